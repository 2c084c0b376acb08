"""Write the measured part of the README's Speed section from the benchmark records.

``python -m avsep.bench.readme`` reads the JSON records that the benchmarks leave in
``benchmarks/`` and replaces the block between :data:`BEGIN` and :data:`END` in
``README.md`` with tables and sentences made from them, so that no figure there is typed in
by hand:

- ``scale.json``: ``make bench-scale`` (:mod:`avsep.bench.scale`);
- ``slurm_overhead.json``: ``make test-slurm`` (``tests/cluster/test_slurm.py``);
- ``demo.json``, ``nmf.json``, ``long_video_memory.json``, ``bsseval.json``: ``make bench``.

A record that is missing is named with the command that makes it; ``--keep`` keeps the
README's current text for those instead (measure one benchmark, regenerate, keep the rest).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BEGIN = "<!-- speed figures: written by `python -m avsep.bench.readme` from benchmarks/*.json; do not edit by hand -->"
END = "<!-- end of speed figures -->"

#: Record file -> (the command that makes it, the renderer, the heading of its part).
PARTS = {
    "scale.json": ("make bench-scale", "_scale", "The testset25-sized workload"),
    "slurm_overhead.json": ("make test-slurm", "_slurm", "SLURM against local"),
    "demo.json": ("make bench", "_demo", "The demo from scratch"),
    "long_video_memory.json": ("make bench", "_memory", "Memory on a 30-minute video"),
    "nmf.json": ("make bench", "_nmf", "The NMF solver against scikit-learn"),
    "bsseval.json": ("make bench", "_bsseval", "BSS Eval of one testset25 mixture"),
}


def _when(r: dict, command: str) -> str:
    where = f", {r['machine']}" if r.get("machine") else ""
    cores = f", {r['cores']} cores" if r.get("cores") else ""
    return f"`{command}`, {r.get('date', 'undated')}{where}{cores}"


def _scale(r: dict) -> list[str]:
    verdict = "within" if r["total_s"] <= r["target_s"] else "**over**"
    music = r["music"]
    lines = ["| stage | wall (s) | jobs | job time (s) |", "|---|---:|---:|---:|"]
    for s in r["stages"]:
        lines.append(f"| {s['stage']} | {s['wall_s']:.1f} | {s['jobs']} | {s['job_s']:.1f} |")
    lines += [
        "",
        f"- From videos to the report, without generating the dataset: **{r['total_s']:.0f} s "
        f"({r['total_s'] / 60:.1f} min)**, {verdict} the {r['target_s'] / 60:.0f}-minute target "
        f"(generation: {r['generation_s']:.0f} s). The seed needed about 7.5 hours.",
        f"- Training side (manifest to MIML): {r['train_side_s']:.0f} s for {r['train_minutes']:.0f} min of "
        f"training audio, **{r['s_per_train_hour']:.0f} s per hour of training audio**.",
        f"- Test side (mixtures to report): {r['test_side_s']:.0f} s for {r['test_minutes']:.0f} min of test "
        f"mixture, **{r['s_per_test_minute']:.1f} s per minute of test mixture**.",
        f"- Projection for full MUSIC ({music['train_hours']:.0f} h of solo audio, {music['test_minutes']:.0f} min "
        f"of test mixture) on a {music['cores']}-core node: **{music['wall_s'] / 3600:.2f} h** against the 2-hour "
        f"target ({music['serial_s'] / 3600:.2f} h in the single training jobs at their measured speed, "
        f"{music['parallel_s'] / 3600:.2f} h of per-item jobs spread over the node; "
        "`avsep.bench.scale.project` says how).",
        f"- The whole DAG of the finished workflow builds in {r['dag_s']:.1f} s.",
    ]
    rules = sorted(r["rules"], key=lambda x: -x["total_s"])
    peak = max(rules, key=lambda x: x["peak_rss_mb"])
    top = ", ".join(f"`{x['rule']}` {x['total_s']:.0f} s over {x['jobs']}" for x in rules[:6])
    lines += [f"- Most job time: {top}.",
              f"- Largest peak memory of a job: `{peak['rule']}`, {peak['peak_rss_mb']:.0f} MB "
              f"({'under' if peak['peak_rss_mb'] < 2048 else '**over**'} the 2 GiB budget)."]
    return lines


def _slurm(r: dict) -> list[str]:
    verdict = "within" if r["ratio"] <= r.get("target_ratio", 1.5) else "**over**"
    return [f"The reduced config ({r.get('config', 'tests/config/tiny.yaml')}) on the single-node test cluster: "
            f"local {r['local_seconds']:.0f} s, SLURM {r['slurm_seconds']:.0f} s over {r['slurm_jobs']} SLURM jobs, "
            f"a ratio of **{r['ratio']:.2f}**, {verdict} the {r.get('target_ratio', 1.5)} target."]


def _demo(r: dict) -> list[str]:
    lines = [f"The demo workflow ({' + '.join(r['configs'])}) from scratch in an empty folder: **{r['wall_s']:.0f} s** "
             f"wall, {r['job_s']:.0f} s of job time over {r['jobs']} jobs."]
    lines += [f"- {line}" for line in r.get("stage_targets", [])]
    return lines


def _memory(r: dict) -> list[str]:
    lines = []
    for step, budget in (("extract_audio", None), ("extract_frames", 1024), ("video_bases", 2048)):
        if step not in r:
            continue
        x = r[step]
        extra = f", {x['frames']} frames of {x['size']} ({x['raw_mb']:.0f} MB raw)" if "frames" in x else ""
        verdict = "" if budget is None else (f", {'under' if x['peak_rss_mib'] < budget else '**over**'} "
                                             f"its {budget} MiB budget")
        lines.append(f"- `{step}`: peak **{x['peak_rss_mib']:.0f} MiB** in {x['seconds']:.1f} s{extra}{verdict}.")
    return [f"A {r['minutes']:g}-minute video, each step in a fresh process, default config:", *lines]


def _nmf(r: dict) -> list[str]:
    rel = (r["avsep_objective"] - r["sklearn_objective"]) / r["sklearn_objective"]
    return [f"KL NMF on the seed's chunk shape (F=2049, 108 frames, M=25, 100 iterations, {r['threads']} threads): "
            f"{r['avsep_chunks_per_s']:.2f} chunks/s against scikit-learn's {r['sklearn_chunks_per_s']:.2f}, "
            f"**{r['speedup']:.1f}x**, at an objective {rel:+.1e} relative to its."]


def _bsseval(r: dict) -> list[str]:
    lines = [f"{r['methods']} estimate sets of 2 sources, {r['seconds']:g} s at {r['sample_rate']} Hz, "
             f"512-tap filters, {r['threads']} threads:", "",
             "| code | seconds | per method (s) | max diff from mir_eval, SDR / SIR / SAR (dB) |",
             "|---|---:|---:|---|"]
    for name, row in r["codes"].items():
        if "failed" in row:
            lines.append(f"| {name} | failed | | {row['failed'][:100]} |")
            continue
        d = row["max_abs_diff_db"]
        lines.append(f"| {name} | {row['seconds']:.2f} | {row['per_method_s']:.2f} | "
                     f"{d['sdr']:.1e} / {d['sir']:.1e} / {d['sar']:.1e} |")
    return lines


def render(benchmarks: Path, keep: dict[str, str] | None = None) -> str:
    """The block's text (markers included) from the records in ``benchmarks``.

    ``keep``: the current block's part per heading, used for a missing record.
    """
    out = [BEGIN, ""]
    for name, (command, fn, heading) in PARTS.items():
        path = benchmarks / name
        if path.exists():
            record = json.loads(path.read_text())
            body = [f"**{heading}** ({_when(record, command)}):", "", *globals()[fn](record)]
            out += [*body, ""]
        elif keep and heading in keep:
            out += [keep[heading].rstrip(), ""]
        else:
            out += [f"**{heading}**: not measured yet; `{command}` measures it.", ""]
    out.append(END)
    return "\n".join(out)


def _current_parts(block: str) -> dict[str, str]:
    parts, heading, lines = {}, None, []
    for line in block.splitlines():
        match = re.match(r"\*\*(.+?)\*\*[ :(]", line)
        if match and match.group(1) in {h for _, _, h in PARTS.values()}:
            if heading:
                parts[heading] = "\n".join(lines)
            heading, lines = match.group(1), []
        if heading and line not in (BEGIN, END):
            lines.append(line)
    if heading:
        parts[heading] = "\n".join(lines)
    return parts


def update(readme: Path, benchmarks: Path, *, keep: bool = False) -> bool:
    """Replace the block in ``readme``; returns whether the file changed.

    Raises:
        ValueError: the README lacks the markers, or holds them out of order.
    """
    text = readme.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: no speed-figures block; it starts with {BEGIN!r} and ends with {END!r}")
    current = text[start:end + len(END)]
    new = render(benchmarks, _current_parts(current) if keep else None)
    changed = new != current
    if changed:
        readme.write_text(text[:start] + new + text[end + len(END):])
    return changed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks")
    parser.add_argument("--keep", action="store_true", help="keep the README's text for records that are missing")
    args = parser.parse_args(argv)
    changed = update(args.readme, args.benchmarks, keep=args.keep)
    print(f"{args.readme}: {'speed figures rewritten' if changed else 'speed figures unchanged'}")


if __name__ == "__main__":
    main()
