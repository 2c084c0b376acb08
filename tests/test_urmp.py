"""URMP's layout read as duets with their true stems, and models taken from another run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from avsep.dataset import DatasetError, build_manifest, scan_dataset
from avsep.urmp import parse_piece_folder, read_urmp, write_layout
from conftest import make_media


def make_piece(root, name, *, seconds=4.0, short={}, sample_rate=48000, video=True, skip_stem=None):
    """A URMP piece folder: the video (a test pattern with a tone) and one AuSep stem per
    player, each a tone of its own at ``sample_rate`` (``short``: player -> stem seconds)."""
    number, title, codes = parse_piece_folder(name)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if video:
        make_media(folder / f"Vid_{name}.mp4", seconds=seconds, sample_rate=sample_rate)
    for k, code in enumerate(codes, 1):
        if k == skip_stem:
            continue
        n = int(round(short.get(k, seconds) * sample_rate))
        tone = 0.1 * np.sin(2 * np.pi * (220 * k) * np.arange(n) / sample_rate).astype(np.float32)
        sf.write(folder / f"AuSep_{k}_{code}_{number}_{title}.wav", tone, sample_rate, subtype="FLOAT")
    (folder / f"AuMix_{name}.wav").write_bytes(b"")  # not read
    return folder


def test_piece_folder_names():
    assert parse_piece_folder("01_Jupiter_vn_vc") == ("01", "Jupiter", ("vn", "vc"))
    assert parse_piece_folder("24_Pirates_vn_vn_va_sax") == ("24", "Pirates", ("vn", "vn", "va", "sax"))
    assert parse_piece_folder("07_Gavotte_With_Words_tpt_tbn") == ("07", "Gavotte_With_Words", ("tpt", "tbn"))
    assert parse_piece_folder("Supplementary_Material") is None
    assert parse_piece_folder("03_Dance") is None


@pytest.fixture
def urmp_root(tmp_path):
    root = tmp_path / "URMP"
    make_piece(root, "01_Jupiter_vn_vc")
    make_piece(root, "02_Sonata_fl_tpt", sample_rate=44100)
    make_piece(root, "03_Dance_fl_cl_vc")          # a trio: skipped
    make_piece(root, "04_Air_vn_vn")               # one instrument twice: skipped
    make_piece(root, "05_Waltz_ob_vc", short={2: 3.0})  # the cello stem 1 s short: an error
    (root / "Supplementary").mkdir()               # not a piece
    return root


def test_reader_skips_trios_and_names_a_stem_that_does_not_fit(urmp_root):
    pieces, problems = read_urmp(urmp_root)
    by_name = {p.name: p for p in pieces}
    assert sorted(by_name) == ["01_Jupiter_vn_vc", "02_Sonata_fl_tpt", "03_Dance_fl_cl_vc", "04_Air_vn_vn",
                               "05_Waltz_ob_vc"]
    assert by_name["01_Jupiter_vn_vc"].usable and by_name["01_Jupiter_vn_vc"].instruments == ("violin", "cello")
    assert by_name["02_Sonata_fl_tpt"].instruments == ("flute", "trumpet")
    assert "3 players (flute, clarinet, cello)" in by_name["03_Dance_fl_cl_vc"].reason
    assert "two violin players" in by_name["04_Air_vn_vn"].reason
    # A stem of the wrong length is the data's fault: a problem, naming the file and both lengths.
    assert problems == [f"{urmp_root / '05_Waltz_ob_vc'}: AuSep_2_vc_05_Waltz.wav lasts 3.00 s, the video's audio "
                        "4.00 s (at most 0.1 s apart)"]
    # Only the pieces of instruments another run's models know.
    pieces, _ = read_urmp(urmp_root, known=["cello", "flute", "trumpet"])
    reasons = {p.name: p.reason for p in pieces}
    assert reasons["01_Jupiter_vn_vc"].startswith("violin is not an instrument the models know")
    assert reasons["02_Sonata_fl_tpt"] == ""


def test_missing_stem_and_missing_video(tmp_path):
    make_piece(tmp_path, "01_Jupiter_vn_vc", skip_stem=2)
    make_piece(tmp_path, "02_Sonata_fl_tpt", video=False)
    pieces, problems = read_urmp(tmp_path)
    assert "no stem AuSep_2_vc_01_Jupiter.wav for player 2 (vc); found AuSep_1_vn_01_Jupiter.wav" in problems[0]
    assert "no video: expected Vid_02_Sonata_fl_tpt.mp4" in problems[1]
    with pytest.raises(DatasetError, match="no URMP piece folder"):
        read_urmp(tmp_path / "01_Jupiter_vn_vc")


def test_layout_makes_test_duets_with_stems_the_manifest_accepts(urmp_root, tmp_path):
    pieces, _ = read_urmp(urmp_root)
    out = tmp_path / "view"
    table = write_layout(pieces, out)
    status = dict(zip(table["piece"], table["status"]))
    assert status == {"01_Jupiter_vn_vc": "used", "02_Sonata_fl_tpt": "used", "03_Dance_fl_cl_vc": "skipped",
                      "04_Air_vn_vn": "skipped", "05_Waltz_ob_vc": "skipped"}
    assert (out / "duet" / "violin_cello" / "01_Jupiter_vn_vc.mp4").resolve() == (
        urmp_root / "01_Jupiter_vn_vc" / "Vid_01_Jupiter_vn_vc.mp4").resolve()
    # The stems at the video's audio rate (the make_media video keeps its 44.1 kHz).
    assert sf.info(str(out / "stems" / "02_Sonata_fl_tpt" / "trumpet.wav")).samplerate == 44100
    cello, rate = sf.read(str(out / "stems" / "01_Jupiter_vn_vc" / "cello.wav"))
    assert rate == 48000 and len(cello) == 4 * 48000
    # Player 2's tone (440 Hz) is the cello's stem.
    spectrum = np.abs(np.fft.rfft(cello))
    assert np.argmax(spectrum) * rate / len(cello) == pytest.approx(440, abs=2)
    manifest, rejected = build_manifest(out, seed=0)
    assert rejected.empty
    assert manifest[["video_id", "kind", "labels", "split"]].values.tolist() == [
        ["02_Sonata_fl_tpt", "duet", "flute,trumpet", "test"], ["01_Jupiter_vn_vc", "duet", "violin,cello", "test"]]
    assert sorted(e.video_id for e in scan_dataset(out).entries) == ["01_Jupiter_vn_vc", "02_Sonata_fl_tpt"]
    assert pd.read_csv(out / "splits.tsv", sep="\t")["split"].eq("test").all()


CODES = {"cello": "vc", "flute": "fl", "trumpet": "tpt"}


def urmp_from_demo(demo_root, root):
    """A URMP-layout folder made of the demo's duets (their video and true stems as URMP
    ships them), a trio of the same video and a piece with an instrument the demo has not."""
    import shutil

    names = []
    for k, video in enumerate(sorted((demo_root / "duet").glob("*/*.mp4")), 1):
        stems = sorted((demo_root / "stems" / video.stem).glob("*.wav"))
        codes = [CODES[s.stem] for s in stems]
        name = f"{k:02d}_Demo_{'_'.join(codes)}"
        (root / name).mkdir(parents=True)
        shutil.copyfile(video, root / name / f"Vid_{name}.mp4")
        for player, (stem, code) in enumerate(zip(stems, codes), 1):
            shutil.copyfile(stem, root / name / f"AuSep_{player}_{code}_{k:02d}_Demo.wav")
        names.append(name)
    trio = root / "09_Trio_vc_fl_tpt"
    trio.mkdir()
    shutil.copyfile(root / names[0] / f"Vid_{names[0]}.mp4", trio / "Vid_09_Trio_vc_fl_tpt.mp4")
    other = root / "10_Other_vn_vc"
    other.mkdir()
    shutil.copyfile(root / names[0] / f"Vid_{names[0]}.mp4", other / "Vid_10_Other_vn_vc.mp4")
    return names


@pytest.mark.workflow
def test_urmp_duets_are_scored_with_the_models_of_another_run(tiny_run, tmp_path):
    """The tiny run's models on a URMP-layout folder: nothing is trained, every model is
    copied from the run, and each two-player piece is separated and scored against its stems."""
    import json

    from conftest import TINY_CONFIG, logged_jobs, run_snakemake

    names = urmp_from_demo(tiny_run / "results" / "demo" / "dataset", tmp_path / "URMP")
    cfg = tmp_path / "urmp.yaml"
    cfg.write_text(json.dumps({"dataset": {"root": str(tmp_path / "URMP"), "layout": "urmp"},
                               "transfer": {"run": str(tiny_run)}, "mixtures": {"count": 0}}))
    work = tmp_path / "work"
    work.mkdir()
    run_snakemake(work, configs=[TINY_CONFIG, cfg])
    jobs = {rule for rule, _ in logged_jobs(work)}
    assert not {r for r in jobs if r.startswith("train_") or r in ("oracle_dictionary", "select_dictionary",
                                                                  "video_bases", "miml_data", "deep_data")}
    assert {"transfer_train_vision", "transfer_oracle_dictionary", "transfer_select_dictionary",
            "transfer_train_deep", "transfer_train_miml"} <= jobs
    pieces = pd.read_csv(work / "results" / "urmp" / "pieces.tsv", sep="\t", keep_default_na=False)
    status = dict(zip(pieces["piece"], pieces["status"]))
    assert status == {**{n: "used" for n in names}, "09_Trio_vc_fl_tpt": "skipped", "10_Other_vn_vc": "skipped"}
    reason = dict(zip(pieces["piece"], pieces["reason"]))
    assert reason["10_Other_vn_vc"].startswith("violin is not an instrument the models know")
    for name in names:
        scores = pd.read_csv(work / "results" / "eval" / "duets" / f"{name}.tsv", sep="\t")
        assert {"oracle_nmf", "miml_nmf", "deep"} <= set(scores["method"])
        assert np.isfinite(scores["sdr"]).all()
    # The copies are the run's files.
    for path in ("results/dictionary/oracle.h5", "results/deep/model.pt"):
        assert (work / path).read_bytes() == (tiny_run / path).read_bytes()


def test_models_of_another_run_are_checked_before_they_are_used(tiny_run, tmp_path):
    """A dictionary made with other STFT settings, a MIML network for bases of another size and
    a model that does not know an instrument of this dataset are refused, naming the file."""
    import yaml

    from avsep.inputs import stft_params
    from avsep.transfer import TransferError, check_transferred, run_instruments
    from conftest import REPO, TINY_CONFIG

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    tiny = yaml.safe_load(TINY_CONFIG.read_text())
    stft = {**stft_params(config), **tiny["audio"]}
    stft.pop("max_seconds", None)
    nmf = config["nmf"]
    instruments = run_instruments(tiny_run)
    assert instruments == ["cello", "flute", "trumpet"]
    for path in ("results/dictionary/oracle.h5", "results/dictionary/miml.h5", "results/miml/model.pt",
                 "results/deep/model.pt", "results/vision/model/classifier.pt"):
        check_transferred(tiny_run / path, instruments=instruments, stft=stft, nmf=nmf)
    with pytest.raises(TransferError, match=r"oracle.h5: made with other parameters: stft_n_fft=2048 \(expected 1024\)"):
        check_transferred(tiny_run / "results/dictionary/oracle.h5", instruments=instruments,
                          stft={**stft, "n_fft": 1024}, nmf=nmf)
    with pytest.raises(TransferError, match="nmf_n_components=25 \\(expected 30\\)"):
        check_transferred(tiny_run / "results/dictionary/miml.h5", instruments=instruments, stft=stft,
                          nmf={**nmf, "n_components": 30})
    with pytest.raises(TransferError, match="reads bases of 1025 frequency bins; this config's audio.n_fft 1024 gives 513"):
        check_transferred(tiny_run / "results/miml/model.pt", instruments=instruments,
                          stft={**stft, "n_fft": 1024}, nmf=nmf)
    with pytest.raises(TransferError, match="knows cello, flute, trumpet, not violin of this dataset"):
        check_transferred(tiny_run / "results/deep/model.pt", instruments=["cello", "violin"], stft=stft, nmf=nmf)
    with pytest.raises(TransferError, match="not the folder of a finished run|no results/manifest.tsv"):
        run_instruments(tmp_path)
