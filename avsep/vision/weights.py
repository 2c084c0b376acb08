"""Fetch torchvision's ImageNet weights into local files, for a user with internet access.

The pipeline never downloads anything. This command is run by hand, once, on a machine
that can reach the weights' host; the file it writes is then named in the config
(``vision.weights: resources/weights/resnet18.pth``) and read like any local state dict:

    make weights NAMES="resnet18 densenet161"
    python -m avsep.vision.weights --dest resources/weights resnet18 densenet161

Each file is downloaded under a temporary name, checked to load as a state dict, and only
then moved to ``<dest>/<name>.pth``. An existing file is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from avsep.errors import InputError

__all__ = ["FETCHABLE", "weights_url", "fetch_weights", "main"]

#: Backbones whose ImageNet weights this command fetches: the halves classifier's
#: torchvision backbones, and the detector's (fasterrcnn_mobilenet_v3_large_320_fpn's).
FETCHABLE = ("resnet18", "mobilenet_v3_small", "densenet161", "mobilenet_v3_large", "resnet50")


def weights_url(name: str) -> str:
    """The URL of torchvision's default ImageNet weights of model ``name``."""
    if name not in FETCHABLE:
        raise InputError(f"no ImageNet weights known for {name!r}; allowed: {', '.join(FETCHABLE)}")
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT.url


def fetch_weights(name: str, dest: str | Path = "resources/weights", *, url: str = "", force: bool = False,
                  progress: bool = True) -> Path:
    """Download the ImageNet state dict of ``name`` to ``<dest>/<name>.pth``.

    Args:
        url: where to download from; empty: torchvision's URL (:func:`weights_url`). A
            mirror or a ``file://`` URL works too.
        force: download again over an existing file.

    Returns:
        the path written (or found).

    Raises:
        InputError: the download failed (no network, for instance: the message says what to
            download and where to put it), or the file is not a state dict.
    """
    import torch

    from avsep.files import read_weights

    url = url or weights_url(name)
    dest = Path(dest)
    target = dest / f"{name}.pth"
    if target.is_file() and not force:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / f".{name}.pth.part"
    try:
        torch.hub.download_url_to_file(url, str(partial), progress=progress)
    except Exception as err:  # urllib raises URLError, HTTPError, OSError, ...
        partial.unlink(missing_ok=True)
        raise InputError(
            f"could not download the ImageNet weights of {name} from {url} ({err}). On a machine with internet "
            f"access run `make weights NAMES={name}`, or download that URL yourself and put the file at "
            f"{target}; then set vision.weights: {target}"
        ) from None
    try:
        read_weights(partial, key=f"weights of {name}")
    except InputError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=FETCHABLE, metavar="NAME",
                        help=f"backbones: {', '.join(FETCHABLE)}")
    parser.add_argument("--dest", default="resources/weights", help="folder to write <name>.pth into")
    parser.add_argument("--url", default="", help="download from this URL instead (one name only)")
    parser.add_argument("--force", action="store_true", help="download again over existing files")
    args = parser.parse_args(argv)
    if args.url and len(args.names) > 1:
        parser.error("--url names one file: give one name")
    failed = 0
    for name in args.names:
        try:
            path = fetch_weights(name, args.dest, url=args.url, force=args.force)
            print(f"{name}: {path}", file=sys.stderr)
        except InputError as err:
            print(f"{name}: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
