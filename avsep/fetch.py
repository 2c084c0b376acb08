"""Fetch MUSIC-style video lists into the MUSIC layout with yt-dlp (the opt-in ``fetch`` stage).

MUSIC, MUSIC-21 and the lists built like them are published as JSON files of video ids per
category::

    {"videos": {"accordion": ["iB17xqmFw3A", ...], "flute violin": ["8DHG_hVSw1o", ...]}}

A category of one name is a solo category, one of two names separated by a space a duet
category. Each name becomes an instrument name through :data:`CATEGORY_NAMES` (MUSIC's and
MUSIC-21's names are this project's names already) and then the user's ``rename`` table, and
each video goes to ``<root>/solo/<instrument>/<id>.mp4`` or ``<root>/duet/<a>_<b>/<id>.mp4``.

:func:`plan_fetch` turns the lists into one :class:`FetchItem` per video id, reporting the ids
listed more than once (under two categories, or as solo and duet): each id is fetched once,
under its first listing, so it can only ever land in one split. :func:`fetch_video` fetches
one item through yt-dlp's Python API, with bounded retries and backoff, into a hidden
partial folder; the file is checked with ffmpeg (and cut to the clip, when one is asked
for) before it is renamed to its final name, so a final name never holds a partial file. A
final file that exists is complete, and is skipped. Nothing here runs unless the user
configures ``dataset.fetch.lists``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from avsep.errors import InputError

__all__ = [
    "CATEGORY_NAMES",
    "DEFAULT_URL",
    "FetchError",
    "FetchItem",
    "FetchPlan",
    "REPORT_COLUMNS",
    "LEAK_COLUMNS",
    "STATUSES",
    "read_video_list",
    "category_instruments",
    "plan_fetch",
    "format_selector",
    "is_unavailable",
    "fetch_video",
    "summarize_report",
    "summary_line",
    "MUSIC_LISTS",
    "MUSIC_LISTS_URL",
    "fetch_lists",
    "main",
]

log = logging.getLogger(__name__)

#: YouTube's watch URL, the default ``dataset.fetch.url``; ``{id}`` is the video id.
DEFAULT_URL = "https://www.youtube.com/watch?v={id}"

#: JSON category name -> this project's instrument name, for the MUSIC (11 instruments) and
#: MUSIC-21 lists. They are the same names: the table is here so that a list with other
#: spellings is mapped in one documented place (``dataset.fetch.rename`` adds to it).
CATEGORY_NAMES: dict[str, str] = {
    name: name
    for name in (
        # MUSIC
        "accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone", "trumpet",
        "tuba", "violin", "xylophone",
        # added by MUSIC-21
        "bagpipe", "banjo", "bassoon", "congas", "drum", "electric_bass", "guzheng", "piano", "pipa",
        "ukulele",
    )
}

#: What a fetched video's report row holds (``results/fetch/report.tsv``).
REPORT_COLUMNS = ["video_id", "category", "kind", "instruments", "path", "status", "reason", "bytes",
                  "seconds", "attempts"]
#: The ids listed more than once (``results/fetch/leaks.tsv``).
LEAK_COLUMNS = ["video_id", "kept", "also_listed"]
#: ``ok``: the file is in place (fetched now or before); ``unavailable``: the site says the
#: video is gone (private, removed, blocked, no such file), not retried; ``error``: anything
#: else, after the retries.
STATUSES = ("ok", "unavailable", "error")

_INSTRUMENT = re.compile(r"[A-Za-z0-9_]+")


class FetchError(InputError, ValueError):
    """A source list or fetch setting that cannot be used; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class FetchItem:
    """One video to fetch: its id, the JSON category it was listed under, and where it goes."""

    video_id: str
    category: str
    kind: str  # solo | duet
    instruments: tuple[str, ...]
    source: str  # the list file

    @property
    def folder(self) -> str:
        return "_".join(self.instruments)

    def relative_path(self, ext: str = "mp4") -> str:
        """Where the video goes under the dataset root (the MUSIC layout)."""
        return f"{self.kind}/{self.folder}/{self.video_id}.{ext}"


@dataclasses.dataclass
class FetchPlan:
    """The videos to fetch, in list order, and the ids listed more than once."""

    items: list[FetchItem]
    leaks: pd.DataFrame  # LEAK_COLUMNS

    def by_id(self) -> dict[str, FetchItem]:
        return {item.video_id: item for item in self.items}


def read_video_list(path: str | Path) -> dict[str, list[str]]:
    """A MUSIC-style list: ``{"videos": {category: [id, ...]}}`` (a bare ``{category: [...]}``
    is read too). Raises :class:`FetchError` naming the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise FetchError(f"dataset.fetch.lists: {path} does not exist; MUSIC's and MUSIC-21's lists come with "
                         "`make music-lists` (needs internet)") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FetchError(f"dataset.fetch.lists: {path} is not JSON ({err})") from err
    videos = None
    if isinstance(data, dict):
        bare = data and all(isinstance(ids, list) for ids in data.values())
        videos = data["videos"] if "videos" in data else data if bare else None
    if not isinstance(videos, dict) or not videos:
        raise FetchError(f"{path}: expected {{\"videos\": {{category: [video id, ...]}}}}, as MUSIC's lists are")
    problems = []
    for category, ids in videos.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() and "/" not in i for i in ids):
            problems.append(f"{path}: category {category!r} is not a list of video ids")
    if problems:
        raise FetchError("\n".join(problems))
    return {str(c): [i.strip() for i in ids] for c, ids in videos.items()}


def category_instruments(category: str, rename: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The instrument names of a JSON category: one for a solo category, two for a duet one.

    The whole category is looked up in ``rename`` first (so ``"acoustic guitar"`` can be
    renamed as one name), then split at white space; each name goes through ``rename`` and
    :data:`CATEGORY_NAMES`. Raises :class:`FetchError` for a category of more than two names,
    a name that cannot be a folder name, or a duet of one instrument twice."""
    rename = dict(rename or {})
    if category in rename:
        names = [rename[category]]
    else:
        names = [rename.get(n, CATEGORY_NAMES.get(n, n)) for n in category.split()]
    if not 1 <= len(names) <= 2:
        raise FetchError(f"category {category!r}: {len(names)} instruments; a category is one instrument (solo) "
                         "or two separated by a space (duet); map it with dataset.fetch.rename")
    bad = [n for n in names if not _INSTRUMENT.fullmatch(n)]
    if bad:
        raise FetchError(f"category {category!r}: {bad[0]!r} cannot be an instrument name (letters, digits and "
                         "'_' only); map it with dataset.fetch.rename")
    if len(names) == 2 and names[0] == names[1]:
        raise FetchError(f"category {category!r}: a duet of {names[0]} and {names[1]} cannot be told apart by "
                         "instrument name")
    return tuple(names)


def plan_fetch(
    lists: Sequence[str | Path],
    *,
    categories: Sequence[str] = (),
    max_per_category: int = 0,
    rename: Mapping[str, str] | None = None,
) -> FetchPlan:
    """Every video to fetch from ``lists``, once per id.

    Args:
        categories: the JSON categories to take (as the JSON spells them); empty: all.
            A category that no list has is an error.
        max_per_category: at most this many ids per category, the first in list order;
            0: all.

    An id listed more than once, in one list or across lists, is fetched under its first
    listing (lists in the given order, categories in file order) and reported in
    ``leaks`` with every other listing, whether another category of the same kind or the
    other kind (solo and duet).
    """
    if max_per_category < 0:
        raise FetchError(f"dataset.fetch.max_per_category: {max_per_category}; 0 (all) or more")
    sources = [(str(p), read_video_list(p)) for p in lists]
    found = {c for _, videos in sources for c in videos}
    unknown = [c for c in categories if c not in found]
    if unknown:
        raise FetchError(f"dataset.fetch.categories names {', '.join(map(repr, unknown))}, which no list has "
                         f"(found: {', '.join(sorted(found))})")
    items: list[FetchItem] = []
    first: dict[str, FetchItem] = {}
    others: dict[str, list[str]] = {}
    for source, videos in sources:
        for category, ids in videos.items():
            if categories and category not in categories:
                continue
            instruments = category_instruments(category, rename)
            kind = "solo" if len(instruments) == 1 else "duet"
            taken = ids[:max_per_category] if max_per_category else ids
            for vid in taken:
                if vid in first:
                    others.setdefault(vid, []).append(f"{kind} {category!r} ({Path(source).name})")
                    continue
                item = FetchItem(vid, category, kind, instruments, source)
                first[vid] = item
                items.append(item)
    leaks = pd.DataFrame(
        [{"video_id": vid, "kept": f"{first[vid].kind} {first[vid].category!r} ({Path(first[vid].source).name})",
          "also_listed": "; ".join(also)} for vid, also in others.items()],
        columns=LEAK_COLUMNS,
    )
    return FetchPlan(items, leaks)


def format_selector(max_height: int, selector: str = "") -> str:
    """yt-dlp's format selection: ``selector`` when given, else the best mp4 video no taller
    than ``max_height`` (0: any) with the best m4a audio, falling back to any container. The
    audio is always kept. ``<=?`` keeps formats whose height is unknown (direct files)."""
    if selector:
        return selector
    cap = f"[height<=?{max_height}]" if max_height else ""
    return f"bv*{cap}[ext=mp4]+ba[ext=m4a]/b{cap}[ext=mp4]/bv*{cap}+ba/b{cap}/b"


#: What a video site or file system says when a video is gone for good: not retried.
_UNAVAILABLE = re.compile(
    r"video unavailable|private video|has been removed|no longer available|is not available|"
    r"account .*terminated|copyright|members-only|confirm your age|blocked it|not made this video available|"
    r"no such file or directory|http error 404|http error 410|404: not found|unsupported url",
    re.IGNORECASE,
)


def is_unavailable(message: str) -> bool:
    """Whether a download error says the video is gone (rather than a transient failure)."""
    return _UNAVAILABLE.search(message) is not None


def _clean(message: str) -> str:
    """One line of an error message, without yt-dlp's ``ERROR:`` prefix, its repeat of the
    cause and colour codes."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(message))
    message = re.sub(r"^\s*ERROR:\s*", "", message).strip()
    message = re.sub(r"\s*\(caused by .*\)$", "", message, flags=re.DOTALL)
    return " ".join(message.split())[:300]


class _Permanent(Exception):
    """A failure that another attempt cannot change (a clip past the video's end)."""


def _check_and_cut(src: Path, dest: Path, *, clip_start: float, clip_seconds: float) -> None:
    """Check a downloaded file with ffmpeg and write the final file's content to ``dest``:
    the file itself, or the clip ``[clip_start, clip_start + clip_seconds)`` re-encoded
    (H.264 and AAC) so that it starts and lasts exactly so. Raises ``RuntimeError`` for a
    damaged download (retried) and :class:`_Permanent` for a clip the video cannot give."""
    import ffmpeg

    from avsep.media import MediaError, ffmpeg_exe, probe_media, read_audio_stream

    try:
        info = probe_media(src)
    except MediaError as err:
        raise RuntimeError(f"the download cannot be read ({err.problem})") from err
    if not (info.has_audio and info.has_video):
        raise _Permanent("the download has no " + ("audio" if info.has_video else "video") + " stream")
    seconds, damage = read_audio_stream(src)
    if damage:
        raise RuntimeError(f"the download is truncated or damaged ({damage})")
    if not clip_seconds and src.suffix.lower() == ".mp4":
        shutil.move(str(src), dest)
        return
    if not clip_seconds:  # another container (webm, mkv): its streams copied into mp4, as the layout names it
        stream = ffmpeg.output(ffmpeg.input(str(src)), str(dest), c="copy", f="mp4", loglevel="error")
        try:
            ffmpeg.run(stream, cmd=ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True)
        except ffmpeg.Error as err:
            raise _Permanent(f"{src.suffix} streams cannot go into mp4: "
                             f"{_clean(err.stderr.decode(errors='replace'))}") from err
        return
    length = max(info.duration, seconds)
    if clip_start + clip_seconds > length + 0.05:
        raise _Permanent(f"the video lasts {length:.1f} s, shorter than the clip's end "
                         f"({clip_start:g} + {clip_seconds:g} s)")
    stream = ffmpeg.output(
        ffmpeg.input(str(src), ss=clip_start, t=clip_seconds), str(dest), vcodec="libx264", pix_fmt="yuv420p",
        acodec="aac", movflags="+faststart", f="mp4", loglevel="error")
    try:
        ffmpeg.run(stream, cmd=ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as err:
        raise RuntimeError(f"cutting the clip failed: {_clean(err.stderr.decode(errors='replace'))}") from err


def _download(url: str, folder: Path, *, selector: str, enable_file_urls: bool) -> Path:
    """One yt-dlp download of ``url`` into ``folder``; the file it wrote."""
    import yt_dlp

    from avsep.media import ffmpeg_exe

    options = {
        "format": selector,
        "outtmpl": {"default": str(folder / "video.%(ext)s")},
        "merge_output_format": "mp4",
        "ffmpeg_location": ffmpeg_exe(),
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        "retries": 0,
        "fragment_retries": 0,
        "enable_file_urls": enable_file_urls,
        "logger": _YtLogger(),
    }
    with yt_dlp.YoutubeDL(options) as ydl:
        info = ydl.extract_info(url, download=True)
    files = [Path(d["filepath"]) for d in (info or {}).get("requested_downloads") or [] if d.get("filepath")]
    files = [f for f in files if f.is_file()] or sorted(p for p in folder.iterdir() if p.is_file()
                                                        and not p.name.endswith((".part", ".ytdl")))
    if not files:
        raise RuntimeError("yt-dlp finished without writing a file")
    return files[0]


class _YtLogger:
    """yt-dlp's messages into this module's log (its errors come back as exceptions)."""

    def debug(self, msg):
        if not msg.startswith("[debug]"):
            log.debug("yt-dlp: %s", msg)

    def info(self, msg):
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg):
        log.info("yt-dlp: %s", _clean(msg))

    def error(self, msg):
        log.debug("yt-dlp: %s", _clean(msg))


def fetch_video(
    item: FetchItem,
    root: str | Path,
    *,
    url_template: str = DEFAULT_URL,
    max_height: int = 480,
    selector: str = "",
    clip_start: float = 0.0,
    clip_seconds: float = 0.0,
    retries: int = 3,
    backoff_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Fetch one video into ``root`` and return its report row (:data:`REPORT_COLUMNS`).

    A video whose final file exists is skipped (status ``ok``, reason ``already
    fetched``): only a complete file ever gets that name. A file fetched before with another
    URL, format or clip (recorded in ``<root>/.fetched/<id>.json``) is fetched again, and
    replaced only once the new one is complete. Otherwise up to ``1 + retries``
    attempts are made, the k-th retry after ``backoff_seconds * 2**(k-1)`` seconds, each
    into ``<root>/.partial/<id>/``, which is emptied first (what a killed run left) and
    removed after. A video the site reports as gone is ``unavailable`` at once; a damaged
    download, a network failure or anything else is retried and ends as ``error`` with the
    last reason. Never raises for a failed download: the stage goes on.
    """
    root = Path(root)
    final = root / item.relative_path()
    row = {"video_id": item.video_id, "category": item.category, "kind": item.kind,
           "instruments": ",".join(item.instruments), "path": item.relative_path(), "status": "ok",
           "reason": "", "bytes": 0, "seconds": 0.0, "attempts": 0}
    url, selector = url_template.replace("{id}", item.video_id), format_selector(max_height, selector)
    made = {"url": url, "format": selector, "clip_start": clip_start, "clip_seconds": clip_seconds}
    record = root / ".fetched" / f"{item.video_id}.json"
    if final.is_file():
        before = json.loads(record.read_text()) if record.is_file() else None
        if before is None or before == made:  # a file the user put there, or this very fetch
            return {**row, "reason": "already fetched", "bytes": final.stat().st_size}
        log.info("%s: fetched before with %s; fetching again with %s", item.video_id, before, made)
    partial = root / ".partial" / item.video_id
    try:
        result = _fetch(item, url, final, partial, row, selector=selector, clip_start=clip_start,
                        clip_seconds=clip_seconds, retries=retries, backoff_seconds=backoff_seconds, sleep=sleep)
        if result["status"] == "ok":
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(made, sort_keys=True))
        return result
    finally:
        try:
            partial.parent.rmdir()  # when no other download is under way
        except OSError:
            pass


def _fetch(item: FetchItem, url: str, final: Path, partial: Path, row: dict, *, selector: str, clip_start: float,
           clip_seconds: float, retries: int, backoff_seconds: float, sleep: Callable[[float], None]) -> dict:
    started = time.perf_counter()
    reason = ""
    for attempt in range(1 + max(0, retries)):
        if attempt:
            wait = backoff_seconds * 2 ** (attempt - 1)
            log.info("%s: attempt %d of %d in %.0f s (%s)", item.video_id, attempt + 1, 1 + retries, wait, reason)
            sleep(wait)
        row["attempts"] = attempt + 1
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            downloaded = _download(url, partial, selector=selector, enable_file_urls=url.startswith("file:"))
            staged = partial / "final.mp4"
            _check_and_cut(downloaded, staged, clip_start=clip_start, clip_seconds=clip_seconds)
            final.parent.mkdir(parents=True, exist_ok=True)
            staged.replace(final)
            shutil.rmtree(partial, ignore_errors=True)
            return {**row, "status": "ok", "reason": "", "bytes": final.stat().st_size,
                    "seconds": round(time.perf_counter() - started, 3)}
        except _Permanent as err:
            row.update(status="error", reason=str(err))
            break
        except Exception as err:  # yt-dlp's DownloadError, ffmpeg, the file system: all reported
            reason = _clean(getattr(err, "msg", None) or str(err)) or type(err).__name__
            if is_unavailable(reason):
                row.update(status="unavailable", reason=reason)
                break
            row.update(status="error", reason=reason)
        finally:
            # A failed attempt leaves nothing; the final name only ever holds a whole file.
            shutil.rmtree(partial, ignore_errors=True)
    return {**row, "seconds": round(time.perf_counter() - started, 3)}


def summarize_report(report: pd.DataFrame) -> pd.DataFrame:
    """Counts per category and status, with a total row: what a user checks after a fetch."""
    counts = (report.groupby(["category", "status"]).size().unstack(fill_value=0)
              .reindex(columns=list(STATUSES), fill_value=0))
    counts["bytes"] = report.groupby("category")["bytes"].sum()
    counts.loc["all"] = counts.sum()
    return counts.reset_index().rename(columns={"index": "category"})


def summary_line(report: pd.DataFrame) -> str:
    """``fetch: 20 videos: 17 ok (3 already there), 3 unavailable, 0 error; 45.2 MB in 12.3 s``."""
    status = report["status"].value_counts()
    already = int((report["reason"] == "already fetched").sum())
    mb = report["bytes"].sum() / 1e6
    return (f"fetch: {len(report)} videos: {status.get('ok', 0)} ok ({already} already there), "
            f"{status.get('unavailable', 0)} unavailable, {status.get('error', 0)} error; "
            f"{mb:.1f} MB, {report['seconds'].sum():.1f} s of downloading")


#: Where the MUSIC dataset's authors publish its id lists (github.com/roudimit/MUSIC_dataset).
MUSIC_LISTS_URL = "https://raw.githubusercontent.com/roudimit/MUSIC_dataset/master/{name}"
#: The lists: MUSIC's solos and duets, and MUSIC-21's solos.
MUSIC_LISTS = ("MUSIC_solo_videos.json", "MUSIC_duet_videos.json", "MUSIC21_solo_videos.json")


def fetch_lists(dest: str | Path = "data", *, url: str = MUSIC_LISTS_URL, names: Sequence[str] = MUSIC_LISTS,
                force: bool = False) -> list[Path]:
    """Download the MUSIC id lists into ``dest`` (``make music-lists``), each checked to be
    a list :func:`read_video_list` reads before it takes its final name. A list already
    there is kept unless ``force``."""
    import urllib.request

    from avsep.files import atomic_path

    dest, written = Path(dest), []
    for name in names:
        target = dest / name
        if target.is_file() and not force:
            log.info("%s: already there", target)
            written.append(target)
            continue
        source = url.format(name=name)
        try:
            with urllib.request.urlopen(source, timeout=60) as response:
                data = response.read()
        except OSError as err:
            raise FetchError(f"could not download {source} ({err}); on a machine with internet access run "
                             f"`make music-lists`, or save that file as {target}") from err
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
            videos = read_video_list(tmp)
        log.info("%s: %d categories, %d ids", target, len(videos), sum(map(len, videos.values())))
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m avsep.fetch [--dest data] [--force]``: the MUSIC id lists into ``dest``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m avsep.fetch", description=main.__doc__)
    parser.add_argument("--dest", default="data", help="folder for the lists (default: data)")
    parser.add_argument("--force", action="store_true", help="download lists that are already there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        fetch_lists(args.dest, force=args.force)
    except FetchError as err:
        raise SystemExit(str(err)) from err


if __name__ == "__main__":
    main()
