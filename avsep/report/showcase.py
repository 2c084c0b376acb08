"""One page per showcased test mixture, for the report: what vision saw, the spectrograms of
the mixture, its true stems and every method's estimates, and players for all of them.

The page is a single HTML file with everything inside it (JPEG images and AAC audio as data
URIs), so that Snakemake's self-contained report can embed it as one item.
"""

from __future__ import annotations

import base64
import html
import io
import subprocess
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from avsep.media import ffmpeg_exe  # noqa: E402

__all__ = ["encode_aac", "spectrogram_grid", "draw_positions", "localization_overlays", "showcase_page"]


def encode_aac(audio: np.ndarray, sample_rate: int, *, bitrate: str = "48k") -> bytes:
    """Mono float audio to AAC in an MP4 container (what every browser's <audio> plays),
    through the bundled ffmpeg. Peaks above full scale are limited, not wrapped."""
    pcm = (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).astype("<i2").tobytes()
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(sample_rate), "-ac", "1",
           "-i", "pipe:0", "-c:a", "aac", "-b:a", bitrate, "-map_metadata", "-1", "-fflags", "+bitexact",
           "-movflags", "+frag_keyframe+empty_moov", "-f", "mp4", "pipe:1"]
    proc = subprocess.run(cmd, input=pcm, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not encode audio: {proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout


def _log_spectrogram(audio: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.asarray(audio, np.float32))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs().numpy()
    return 20 * np.log10(spec + 1e-6)


def spectrogram_grid(rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], sample_rate: int) -> bytes:
    """A JPEG of log-magnitude spectrograms: one row per group (mixture, stems, a method's
    estimates), one panel per signal, on one colour scale."""
    ncols = max(len(signals) for _, signals in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(4.2 * ncols, 2.3 * len(rows)), squeeze=False,
                             sharex=True, sharey=True)
    specs = {(r, c): _log_spectrogram(sig) for r, (_, signals) in enumerate(rows) for c, (_, sig) in enumerate(signals)}
    top = max(float(s.max()) for s in specs.values())
    for r, (group, signals) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(signals):
                ax.axis("off")
                continue
            spec = specs[(r, c)]
            seconds = len(signals[c][1]) / sample_rate
            ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                      extent=(0, seconds, 0, sample_rate / 2000))
            ax.set_title(f"{group}: {signals[c][0]}", fontsize=9)
            if c == 0:
                ax.set_ylabel("kHz")
            if r == len(rows) - 1:
                ax.set_xlabel("s")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return _jpeg(Image.open(buffer))


def draw_positions(frame: np.ndarray, record: dict, truth: Sequence[str] | None = None) -> bytes:
    """A JPEG of a side-by-side frame with what vision placed where: each instrument's name on
    its side, its box when the method gives one, green when it matches ``truth`` (the true
    instruments left to right), red when not."""
    image = Image.fromarray(np.asarray(frame, np.uint8)).convert("RGB")
    scale = max(1, 448 // image.width)
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    width = image.width
    draw.line([(width // 2, 0), (width // 2, image.height)], fill=(255, 255, 255), width=1)
    boxes = record.get("boxes") or [None] * len(record["instruments"])
    for k, (inst, pos, box) in enumerate(zip(record["instruments"], record["positions"], boxes)):
        right = truth is not None and pos in ("left", "right") and truth[0 if pos == "left" else 1] == inst
        colour = (60, 220, 60) if right or truth is None else (235, 50, 50)
        if box:
            draw.rectangle([v * scale for v in box], outline=colour, width=2)
        x = 6 if pos == "left" else width // 2 + 6
        label = f"{inst} ({record['scores'][k]:.2f})" if record.get("scores") else inst
        draw.rectangle([x - 3, 3, x + 7 * len(label), 17], fill=(0, 0, 0))
        draw.text((x, 5), label, fill=colour)
    return _jpeg(image)


def localization_overlays(frame: np.ndarray, maps: Sequence[tuple[str, np.ndarray, Sequence[str]]],
                          instruments: Sequence[str], boxes=None) -> bytes:
    """A JPEG grid of localization maps over one frame: a row per method (``(method, maps
    (n_instruments, H, W), their instrument names)``), a column per instrument of
    ``instruments``; each instrument's true boxes (rows ``instrument, x1, y1, x2, y2``), when
    given, drawn in white; a map is drawn more opaque the higher it is."""
    import matplotlib.patches as patches

    fig, axes = plt.subplots(len(maps), len(instruments), figsize=(3.6 * len(instruments), 2.0 * len(maps) + 0.4),
                             squeeze=False)
    for r, (method, heat, names) in enumerate(maps):
        for c, inst in enumerate(instruments):
            ax = axes[r, c]
            ax.imshow(frame)
            if inst in names:
                # The map in colour, as opaque as it is high: the frame shows through where it is low.
                values = np.clip(heat[list(names).index(inst)], 0, 1)
                colours = plt.get_cmap("inferno")(values)
                colours[..., 3] = 0.75 * values
                ax.imshow(colours)
            if boxes is not None:
                for _, b in boxes[boxes["instrument"] == inst].iterrows():
                    ax.add_patch(patches.Rectangle((b["x1"], b["y1"]), b["x2"] - b["x1"], b["y2"] - b["y1"],
                                                   fill=False, edgecolor="white", linewidth=1.5))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{method}: {inst}", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", dpi=80, pil_kwargs={"quality": JPEG_QUALITY})
    plt.close(fig)
    return buffer.getvalue()


#: JPEG quality of the page's pictures: it keeps the pages small enough that Snakemake's
#: report can open them, as data: URIs that Chromium caps at 2 MiB.
JPEG_QUALITY = 85


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _image_mime(data: bytes) -> str:
    return "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"


def showcase_page(mix_id: str, *, frame_image: bytes, spectrogram_image: bytes,
                  tracks: Sequence[tuple[str, str, bytes]], scores: Sequence[dict], vision: dict,
                  localization_image: bytes | None = None) -> str:
    """The HTML page of one mixture.

    Args:
        tracks: ``(group, name, AAC bytes)`` per player, in display order.
        scores: rows ``{"method", "instrument", "sdr", "sir", "sar"}`` of this mixture.
        vision: the mixture's vision record.
        localization_image: the maps over a frame (:func:`localization_overlays`), shown
            beside the players.
    """
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(s['method'])}</td><td>{esc(s['instrument'])}</td>"
        + "".join(f"<td>{s[k]:.2f}</td>" for k in ("sdr", "sir", "sar")) + "</tr>"
        for s in scores
    )
    players, group = [], None
    for g, name, data in tracks:
        if g != group:
            players.append(f"<h3>{esc(g)}</h3>")
            group = g
        players.append(f"<figure><figcaption>{esc(name)}</figcaption>"
                       f"<audio controls preload='none' src='{_data_uri(data, 'audio/mp4')}'></audio></figure>")
    if localization_image:
        players.append("<h3>Where each instrument is (localization maps, true boxes in white)</h3>"
                       f"<img alt='localization maps' src='{_data_uri(localization_image, _image_mime(localization_image))}'>")
    seen = " | ".join(f"{esc(i)} ({esc(p)})" for i, p in zip(vision["instruments"], vision["positions"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(mix_id)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
figure {{ display: inline-block; margin: 0 1em 0.5em 0; }}
figcaption {{ font-size: 0.9em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
img {{ max-width: 100%; }}
</style></head><body>
<h2>{esc(mix_id)}</h2>
<p>Vision ({esc(vision.get('method', ''))}) saw: {seen}. Green: the instrument truly on that side.</p>
<img alt="frame with the predicted positions" src="{_data_uri(frame_image, _image_mime(frame_image))}">
<h3>Scores (dB)</h3>
<table><tr><th>method</th><th>instrument</th><th>SDR</th><th>SIR</th><th>SAR</th></tr>{rows}</table>
{''.join(players)}
<h3>Spectrograms</h3>
<img alt="spectrograms" src="{_data_uri(spectrogram_image, _image_mime(spectrogram_image))}">
</body></html>
"""
