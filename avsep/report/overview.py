"""A look at the dataset: counts per instrument and split, and a contact sheet of frames."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

__all__ = ["dataset_summary", "contact_sheet"]

SPLITS = ["train", "val", "test"]


def dataset_summary(manifest: pd.DataFrame) -> pd.DataFrame:
    """Videos and minutes of audio per instrument and split.

    Returns:
        One row per label (solo instruments, then duet pairs), columns
        ``kind, labels, <split>_videos, <split>_minutes`` for each split, and totals.
    """
    rows = []
    for (kind, labels), group in manifest.groupby(["kind", "labels"], sort=True):
        row = {"kind": kind, "labels": labels}
        for split in SPLITS:
            part = group[group["split"] == split]
            row[f"{split}_videos"] = len(part)
            row[f"{split}_minutes"] = round(part["duration"].sum() / 60.0, 2)
        row["total_videos"] = len(group)
        row["total_minutes"] = round(group["duration"].sum() / 60.0, 2)
        rows.append(row)
    table = pd.DataFrame(rows)
    solo_first = table["kind"] != "solo"
    return table.iloc[np.lexsort((table["labels"], solo_first))].reset_index(drop=True)


def contact_sheet(
    tiles: Sequence[tuple[np.ndarray, str]], *, columns: int = 8, tile_height: int = 112
) -> Image.Image:
    """Lay out frames in a grid with a caption under each.

    Args:
        tiles: ``(frame, caption)`` pairs, frames uint8 ``(height, width, 3)``.
        columns: tiles per row.
        tile_height: height each frame is scaled to, in pixels.
    """
    if not tiles:
        raise ValueError("contact_sheet needs at least one frame")
    images = []
    for frame, caption in tiles:
        img = Image.fromarray(frame)
        width = max(1, round(img.width * tile_height / img.height))
        images.append((img.resize((width, tile_height), Image.BILINEAR), caption))
    tile_w = max(img.width for img, _ in images)
    caption_h = 14
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * tile_w, rows * (tile_height + caption_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (img, caption) in enumerate(images):
        x, y = (i % columns) * tile_w, (i // columns) * (tile_height + caption_h)
        sheet.paste(img, (x, y))
        draw.text((x + 2, y + tile_height + 1), caption[: tile_w // 6], fill=(0, 0, 0))
    return sheet
