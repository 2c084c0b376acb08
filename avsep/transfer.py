"""Models from another run (``transfer.run``): evaluate on a dataset without training on it.

URMP has no solo videos to train on, and a user may want MUSIC-trained models scored on
another dataset. With ``transfer.run`` set to another run's folder (the one holding its
``results/``), each training rule of :data:`TRANSFER_RULES` is replaced by a rule that
copies that run's files to the same paths here, so every later stage reads them as if they
had been trained here. Each copied model is checked first (:func:`check_transferred`): a
dictionary must have been made with this config's STFT and NMF settings, the MIML network
must read bases of this STFT's size, and every model must know every instrument of this
dataset; otherwise a :class:`TransferError` names the file and what differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from avsep.errors import InputError

__all__ = ["TRANSFER_RULES", "TransferError", "run_instruments", "check_transferred", "transfer_file"]

#: The rules whose outputs come from ``transfer.run`` instead of being made here.
TRANSFER_RULES = ("train_vision", "oracle_dictionary", "train_miml", "select_dictionary", "train_deep", "train_probe",
                  "train_localization")


class TransferError(InputError, ValueError):
    """A file of ``transfer.run`` that this run cannot use; the message says why."""


def run_instruments(run: str | Path) -> list[str]:
    """The instruments another run trained on: the labels of its training solo videos, from
    its ``results/manifest.tsv``."""
    from avsep.dataset import read_manifest

    path = Path(run) / "results" / "manifest.tsv"
    if not path.is_file():
        raise TransferError(f"transfer.run: {run} has no results/manifest.tsv; it must be the folder of a "
                            "finished run (the one holding its results/)")
    table = read_manifest(path)
    solos = table[(table["kind"] == "solo") & (table["split"] == "train")]
    return sorted(set(solos["labels"]))


def _missing(known: Sequence[str], instruments: Sequence[str]) -> list[str]:
    return [i for i in instruments if i not in set(known)]


def check_transferred(path: str | Path, *, instruments: Sequence[str], stft: Mapping, nmf: Mapping) -> None:
    """Refuse a file of another run that this run cannot use.

    Args:
        instruments: this dataset's instruments; every model must know them all.
        stft, nmf: this config's ``audio.*`` STFT settings and ``nmf.*``, which a dictionary
            must have been made with.
    """
    path = Path(path)
    if path.suffix == ".h5":
        import h5py

        from avsep.bases import NMFConfig, STFTConfig, bases_params
        from avsep.files import CacheError, check_cache

        expect = bases_params(STFTConfig(**stft), NMFConfig(**nmf))
        with h5py.File(path, "r") as h5:
            if not set(expect) & set(h5.attrs):
                raise TransferError(f"transfer.run: {path} does not record the STFT and NMF settings it was made "
                                    "with (an older avsep wrote it); rerun its rule in that run")
            try:
                check_cache(path, dict(h5.attrs), expect, kind="dictionary")
            except CacheError as err:
                raise TransferError(f"transfer.run: {err}".replace("; delete it (or run with --forcerun on its "
                                                                   "rule) to recompute", "; this config's "
                                                                   "audio.* and nmf.* must be the other run's")) from err
            known = list(h5.keys())
    elif path.suffix == ".pt":
        import torch

        meta = torch.load(path, map_location="cpu", weights_only=False)
        known = list(meta.get("label_names", instruments)) if isinstance(meta, dict) else list(instruments)
        n_bins = meta.get("n_bins") if isinstance(meta, dict) else None
        if n_bins is not None and n_bins != stft["n_fft"] // 2 + 1:
            raise TransferError(f"transfer.run: {path} reads bases of {n_bins} frequency bins; this config's "
                                f"audio.n_fft {stft['n_fft']} gives {stft['n_fft'] // 2 + 1}")
    else:
        return
    missing = _missing(known, instruments)
    if missing:
        raise TransferError(f"transfer.run: {path} knows {', '.join(known)}, not {', '.join(missing)} of this "
                            "dataset; leave those out (dataset.instruments) or train on them")


def transfer_file(source: str | Path, dest: str | Path, **check) -> None:
    """Check ``source`` (:func:`check_transferred`) and copy it to ``dest`` atomically."""
    import shutil

    from avsep.files import atomic_path

    check_transferred(source, **check)
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
