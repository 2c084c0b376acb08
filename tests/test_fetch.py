"""The fetch stage: MUSIC-style lists fetched with the real yt-dlp code, on file:// URLs that
point at videos made here (no video site is reachable from the test machines)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from avsep.config import consistency_problems
from avsep.fetch import (
    FetchError,
    FetchItem,
    category_instruments,
    fetch_video,
    is_unavailable,
    plan_fetch,
    read_video_list,
    summarize_report,
)
from avsep.files import read_mono
from avsep.media import extract_audio, probe_media
from conftest import logged_jobs, make_media, run_snakemake


def write_list(path, videos):
    path.write_text(json.dumps({"version": 1.0, "videos": videos}))
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A folder of source videos: five of 6 s, one half-written (its container cut off)."""
    folder = tmp_path_factory.mktemp("sources")
    for i, vid in enumerate(["v1", "v2", "c1", "d1", "-dash_1"]):
        make_media(folder / f"{vid}.mp4", seconds=6.0, freq=300 + 100 * i)
    whole = (folder / "v1.mp4").read_bytes()
    (folder / "broken.mp4").write_bytes(whole[: len(whole) // 2])
    return folder


def item(vid, category="violin"):
    names = tuple(category.split())
    return FetchItem(vid, category, "solo" if len(names) == 1 else "duet", names, "list.json")


def test_categories_map_onto_instrument_names():
    assert category_instruments("acoustic_guitar") == ("acoustic_guitar",)
    assert category_instruments("flute violin") == ("flute", "violin")
    # MUSIC-21's additions are known names.
    assert category_instruments("electric_bass") == ("electric_bass",)
    # rename maps a whole category (spaces and all) or a name inside a duet category.
    assert category_instruments("acoustic guitar", {"acoustic guitar": "acoustic_guitar"}) == ("acoustic_guitar",)
    assert category_instruments("guitar violin", {"guitar": "acoustic_guitar"}) == ("acoustic_guitar", "violin")
    with pytest.raises(FetchError, match="3 instruments"):
        category_instruments("flute violin cello")
    with pytest.raises(FetchError, match="cannot be an instrument name"):
        category_instruments("flûte")
    with pytest.raises(FetchError, match="cannot be told apart"):
        category_instruments("violin violin")


def test_plan_takes_categories_in_order_and_reports_ids_listed_twice(tmp_path):
    solo = write_list(tmp_path / "solo.json", {"violin": ["a", "b", "c"], "cello": ["d", "b"], "flute": ["e"]})
    duet = write_list(tmp_path / "duet.json", {"cello violin": ["f", "d"]})
    plan = plan_fetch([solo, duet])
    assert [(i.video_id, i.relative_path()) for i in plan.items] == [
        ("a", "solo/violin/a.mp4"), ("b", "solo/violin/b.mp4"), ("c", "solo/violin/c.mp4"),
        ("d", "solo/cello/d.mp4"), ("e", "solo/flute/e.mp4"), ("f", "duet/cello_violin/f.mp4")]
    leaks = plan.leaks.set_index("video_id")
    # b under two solo categories, d as a solo and in a duet: each fetched once, and reported.
    assert sorted(leaks.index) == ["b", "d"]
    assert leaks.loc["b", "kept"] == "solo 'violin' (solo.json)" and "solo 'cello'" in leaks.loc["b", "also_listed"]
    assert leaks.loc["d", "kept"] == "solo 'cello' (solo.json)"
    assert leaks.loc["d", "also_listed"] == "duet 'cello violin' (duet.json)"
    # A category filter and a per-category cap (the first ids in list order).
    plan = plan_fetch([solo, duet], categories=["violin", "cello violin"], max_per_category=2)
    assert [i.video_id for i in plan.items] == ["a", "b", "f", "d"] and plan.leaks.empty
    with pytest.raises(FetchError, match="'harp', which no list has"):
        plan_fetch([solo], categories=["harp"])


def test_bad_lists_are_clear_errors(tmp_path):
    with pytest.raises(FetchError, match="does not exist"):
        read_video_list(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FetchError, match="is not JSON"):
        read_video_list(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text(json.dumps({"videos": {"violin": "abc"}}))
    with pytest.raises(FetchError, match="'violin' is not a list of video ids"):
        read_video_list(tmp_path / "list.json")
    (tmp_path / "empty.json").write_text(json.dumps({"version": 1}))
    with pytest.raises(FetchError, match="expected"):
        read_video_list(tmp_path / "empty.json")


def test_the_sites_words_for_a_gone_video_are_unavailable():
    for message in ["[youtube] abc: Video unavailable. This video has been removed by the uploader",
                    "[youtube] abc: Private video. Sign in if you've been granted access",
                    "[youtube] abc: This video is no longer available because the YouTube account "
                    "associated with this video has been terminated.",
                    "[generic] abc: Unable to download webpage: HTTP Error 404: Not Found"]:
        assert is_unavailable(message), message
    for message in ["Unable to download webpage: <urlopen error [Errno -3] Temporary failure in name resolution>",
                    "HTTP Error 503: Service Unavailable", "the download is truncated or damaged"]:
        assert not is_unavailable(message), message


def test_fetch_writes_the_file_and_skips_it_after(sources, tmp_path, monkeypatch):
    url = f"file://{sources}/{{id}}.mp4"
    row = fetch_video(item("-dash_1"), tmp_path, url_template=url)
    assert row["status"] == "ok" and row["attempts"] == 1
    final = tmp_path / "solo" / "violin" / "-dash_1.mp4"
    assert row["bytes"] == final.stat().st_size == (sources / "-dash_1.mp4").stat().st_size
    assert not (tmp_path / ".partial").exists()
    import yt_dlp

    def refuse(*args, **kwargs):
        raise AssertionError("a complete file was downloaded again")

    monkeypatch.setattr(yt_dlp, "YoutubeDL", refuse)
    again = fetch_video(item("-dash_1"), tmp_path, url_template=url)
    assert again["status"] == "ok" and again["reason"] == "already fetched" and again["attempts"] == 0


def test_missing_video_is_unavailable_without_retries(sources, tmp_path):
    waits = []
    row = fetch_video(item("gone"), tmp_path, url_template=f"file://{sources}/{{id}}.mp4", retries=3,
                      sleep=waits.append)
    assert row["status"] == "unavailable" and "No such file or directory" in row["reason"]
    assert row["attempts"] == 1 and waits == []
    assert not (tmp_path / "solo").exists() and not (tmp_path / ".partial").exists()


def test_a_download_that_dies_half_way_leaves_no_final_file_and_is_retried(sources, tmp_path, monkeypatch):
    """The transfer breaks after half the bytes on the first attempt (as a dropped connection
    does); the second attempt gets the whole file."""
    from yt_dlp.downloader.http import HttpFD
    from yt_dlp.utils import ContentTooShortError

    original, calls = HttpFD.real_download, []

    def dying(self, filename, info_dict):
        calls.append(filename)
        if len(calls) == 1:
            whole = (sources / "v1.mp4").read_bytes()
            with open(self.temp_name(filename), "wb") as out:
                out.write(whole[: len(whole) // 2])
            raise ContentTooShortError(len(whole) // 2, len(whole))
        return original(self, filename, info_dict)

    monkeypatch.setattr(HttpFD, "real_download", dying)
    final = tmp_path / "solo" / "violin" / "v1.mp4"
    seen_between = []

    def sleep(seconds):
        seen_between.append((seconds, final.exists(), any((tmp_path / ".partial").rglob("*.*"))))

    row = fetch_video(item("v1"), tmp_path, url_template=f"file://{sources}/{{id}}.mp4", retries=2,
                      backoff_seconds=4.0, sleep=sleep)
    # Between the attempts, neither a final file nor the partial one is there.
    assert seen_between == [(4.0, False, False)]
    assert row["status"] == "ok" and row["attempts"] == 2 and len(calls) == 2
    assert final.read_bytes() == (sources / "v1.mp4").read_bytes()


def test_a_damaged_file_is_retried_with_backoff_then_an_error(sources, tmp_path):
    waits = []
    row = fetch_video(item("broken"), tmp_path, url_template=f"file://{sources}/{{id}}.mp4", retries=2,
                      backoff_seconds=1.5, sleep=waits.append)
    assert row["status"] == "error" and "cannot be read" in row["reason"]
    assert row["attempts"] == 3 and waits == [1.5, 3.0]
    assert not list(tmp_path.rglob("*.mp4"))


def test_clip_is_cut_at_its_start_and_length(tmp_path):
    """A source silent for its first 2 s, then a tone: the clip from 1 s on must be silent for
    1 s, and last exactly its length."""
    src = tmp_path / "src"
    make_media(src / "tone.mp4", seconds=8.0, channels=1, audio_filter="adelay=2000|2000,apad",
               extra=["-t", "8"])
    row = fetch_video(item("tone"), tmp_path / "root", url_template=f"file://{src}/{{id}}.mp4",
                      clip_start=1.0, clip_seconds=4.0)
    assert row["status"] == "ok"
    clip = tmp_path / "root" / "solo" / "violin" / "tone.mp4"
    info = probe_media(clip)
    assert info.has_video and info.has_audio and info.duration == pytest.approx(4.0, abs=0.1)
    extract_audio(clip, tmp_path / "clip.wav", sample_rate=8000)
    audio = read_mono(tmp_path / "clip.wav", 8000)
    assert len(audio) / 8000 == pytest.approx(4.0, abs=0.1)
    envelope = np.array([np.sqrt(np.mean(audio[i:i + 400] ** 2)) for i in range(0, len(audio) - 400, 400)])
    onset = np.argmax(envelope > 0.5 * envelope.max()) * 400 / 8000
    assert onset == pytest.approx(1.0, abs=0.1)
    # Another clip of a fetched video: fetched again.
    again = fetch_video(item("tone"), tmp_path / "root", url_template=f"file://{src}/{{id}}.mp4",
                        clip_start=0.0, clip_seconds=6.0)
    assert again["reason"] == "" and probe_media(clip).duration == pytest.approx(6.0, abs=0.1)
    # A clip past the end cannot be had: an error at once, not retried.
    waits = []
    late = fetch_video(item("tone", "cello"), tmp_path / "root", url_template=f"file://{src}/{{id}}.mp4",
                       clip_start=6.0, clip_seconds=4.0, sleep=waits.append)
    assert late["status"] == "error" and "shorter than the clip's end" in late["reason"] and waits == []


def test_summary_counts_per_category():
    report = pd.DataFrame({"category": ["violin", "violin", "cello"], "status": ["ok", "unavailable", "ok"],
                           "bytes": [10, 0, 5]})
    table = summarize_report(report).set_index("category")
    assert table.loc["violin", ["ok", "unavailable", "error"]].tolist() == [1, 1, 0]
    assert table.loc["all", ["ok", "unavailable", "error", "bytes"]].tolist() == [2, 1, 0, 15]


def test_fetch_needs_a_root_and_the_music_layout(tmp_path):
    import yaml
    from snakemake.utils import validate

    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))
    config["dataset"]["fetch"]["lists"] = [str(tmp_path / "list.json")]
    assert any("dataset.fetch.lists" in p and "dataset.root" in p for p in consistency_problems(config))
    config["dataset"].update(root=str(tmp_path / "data"), layout="urmp")
    assert any("writes the MUSIC layout" in p for p in consistency_problems(config))
    # A root not fetched into yet is no problem: the manifest checks it after the fetch.
    config["dataset"]["layout"] = "music"
    assert consistency_problems(config) == []


def test_snakemake_fetch_goes_on_past_missing_videos_and_a_rerun_fetches_nothing(sources, tmp_path):
    """The fetch target on lists with three missing ids, a leak and a duet: the report, the
    MUSIC layout, then a second call that runs no job and touches no file."""
    solo = write_list(tmp_path / "solo.json", {"violin": ["v1", "gone1", "v2", "gone2"], "cello": ["c1", "v2"]})
    duet = write_list(tmp_path / "duet.json", {"cello violin": ["d1", "gone3"]})
    cfg = tmp_path / "fetch.yaml"
    cfg.write_text(json.dumps({"dataset": {"root": str(tmp_path / "data"), "fetch": {
        "lists": [str(solo), str(duet)], "url": f"file://{sources}/{{id}}.mp4", "retries": 1,
        "backoff_seconds": 0.0}}}))
    work = tmp_path / "work"
    work.mkdir()
    run_snakemake(work, "fetch", configs=[cfg])
    report = pd.read_csv(work / "results" / "fetch" / "report.tsv", sep="\t", keep_default_na=False)
    status = dict(zip(report["video_id"], report["status"]))
    assert status == {"v1": "ok", "gone1": "unavailable", "v2": "ok", "gone2": "unavailable", "c1": "ok",
                      "d1": "ok", "gone3": "unavailable"}
    files = sorted(str(p.relative_to(tmp_path / "data")) for p in (tmp_path / "data").rglob("*.mp4"))
    assert files == ["duet/cello_violin/d1.mp4", "solo/cello/c1.mp4", "solo/violin/v1.mp4", "solo/violin/v2.mp4"]
    leaks = pd.read_csv(work / "results" / "fetch" / "leaks.tsv", sep="\t")
    assert leaks["video_id"].tolist() == ["v2"]
    log = (work / "logs" / "fetch_report.log").read_text()
    assert "fetch: 7 videos: 4 ok (0 already there), 3 unavailable, 0 error" in log
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.mp4")}
    first_jobs = logged_jobs(work)
    again = run_snakemake(work, "fetch", configs=[cfg])
    assert "Nothing to be done" in again.stdout + again.stderr
    assert logged_jobs(work) == first_jobs
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.mp4")} == stamps


def test_music_lists_are_downloaded_checked_and_kept(tmp_path):
    from avsep.fetch import fetch_lists

    site = tmp_path / "site"
    site.mkdir()
    write_list(site / "MUSIC_solo_videos.json", {"violin": ["a", "b"]})
    (site / "broken.json").write_text("<html>rate limited</html>")
    url = f"file://{site}/{{name}}"
    written = fetch_lists(tmp_path / "data", url=url, names=["MUSIC_solo_videos.json"])
    assert read_video_list(written[0]) == {"violin": ["a", "b"]}
    # A page that is not a list never takes the list's name.
    with pytest.raises(FetchError, match="is not JSON"):
        fetch_lists(tmp_path / "data", url=url, names=["broken.json"])
    assert not (tmp_path / "data" / "broken.json").exists()
    with pytest.raises(FetchError, match="could not download .*make music-lists"):
        fetch_lists(tmp_path / "data", url=url, names=["MUSIC21_solo_videos.json"])


def test_another_container_is_put_into_mp4_as_the_layout_names_it(tmp_path):
    src = make_media(tmp_path / "site" / "w1.webm", seconds=3.0, vcodec="libvpx-vp9", acodec="libopus",
                     sample_rate=48000)
    row = fetch_video(item("w1"), tmp_path / "root", url_template=f"file://{src.parent}/{{id}}.webm")
    assert row["status"] == "ok" and row["path"] == "solo/violin/w1.mp4"
    info = probe_media(tmp_path / "root" / "solo" / "violin" / "w1.mp4")
    assert (info.video_codec, info.audio_codec) == ("vp9", "opus")
    assert info.duration == pytest.approx(3.0, abs=0.1)
