"""Drawn pictures of players and their instruments, for the embedded demo dataset.

Each instrument has its own silhouette, colours and pose, so that telling them apart from
frames is a real (if easy) visual task. Everything is drawn with Pillow on a square RGBA
canvas of ``CANVAS`` pixels: the player first, then the instrument on its own layer, which
is rotated into its playing pose. The instrument layer's alpha gives its bounding box.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["CANVAS", "INSTRUMENT_PICTURES", "draw_player_sprite"]

#: Side of the square canvas a player is drawn on, in pixels.
CANVAS = 200


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, hue=0.03, light=0.08):
    """Shift a colour slightly in hue and lightness, so no two videos look identical."""
    h, l, s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    h = (h + rng.uniform(-hue, hue)) % 1.0
    l = float(np.clip(l + rng.uniform(-light, light), 0.05, 0.95))
    return tuple(int(round(255 * c)) for c in colorsys.hls_to_rgb(h, l, s))


def _bowed_body(d: ImageDraw.ImageDraw, cx, top, w, h, wood, dark):
    """Violin-family body: upper and lower bouts, waist, f-holes, fingerboard, scroll."""
    d.ellipse([cx - 0.42 * w, top, cx + 0.42 * w, top + 0.45 * h], fill=wood)
    d.ellipse([cx - 0.5 * w, top + 0.38 * h, cx + 0.5 * w, top + h], fill=wood)
    d.rectangle([cx - 0.3 * w, top + 0.3 * h, cx + 0.3 * w, top + 0.6 * h], fill=wood)
    for sx in (-1, 1):
        d.line([cx + sx * 0.2 * w, top + 0.45 * h, cx + sx * 0.2 * w, top + 0.7 * h], fill=dark, width=2)
    d.rectangle([cx - 0.07 * w, top - 0.55 * h, cx + 0.07 * w, top + 0.6 * h], fill=(20, 20, 20))
    d.ellipse([cx - 0.1 * w, top - 0.68 * h, cx + 0.1 * w, top - 0.52 * h], fill=dark)
    d.rectangle([cx - 0.18 * w, top + 0.75 * h, cx + 0.18 * w, top + 0.8 * h], fill=dark)


def _violin(d, rng):
    wood = _jitter((176, 84, 24), rng)
    _bowed_body(d, 100, 60, 34, 50, wood, (60, 25, 5))
    # The bow, a thin light stick across the strings.
    d.line([60, 110, 150, 80], fill=(230, 220, 190), width=2)
    return -40.0, (14, -30)


def _cello(d, rng):
    wood = _jitter((112, 40, 18), rng)
    _bowed_body(d, 100, 85, 70, 95, wood, (40, 12, 4))
    d.line([100, 180, 100, 198], fill=(90, 90, 90), width=3)  # endpin
    d.line([40, 150, 165, 135], fill=(230, 220, 190), width=3)  # bow
    return 8.0, (0, 0)


def _guitar(d, rng):
    wood = _jitter((224, 186, 132), rng)
    d.ellipse([68, 110, 132, 174], fill=wood, outline=(90, 60, 30), width=2)
    d.ellipse([76, 84, 124, 128], fill=wood, outline=(90, 60, 30), width=2)
    d.rectangle([80, 112, 120, 130], fill=wood)
    d.ellipse([91, 111, 109, 129], fill=(15, 10, 5))
    d.rectangle([86, 148, 114, 153], fill=(70, 40, 20))
    d.rectangle([95, 18, 105, 88], fill=(110, 65, 30))
    d.polygon([(92, 4), (108, 4), (106, 20), (94, 20)], fill=(60, 35, 15))
    for x in (97, 100, 103):
        d.line([x, 20, x, 150], fill=(240, 240, 240), width=1)
    return 62.0, (0, -12)


def _trumpet(d, rng):
    brass = _jitter((232, 190, 40), rng, light=0.05)
    d.rectangle([58, 94, 140, 102], fill=brass)
    d.rectangle([70, 104, 128, 111], fill=brass)
    d.polygon([(138, 92), (172, 76), (172, 122), (138, 106)], fill=brass)
    d.ellipse([166, 76, 178, 122], fill=_jitter((180, 130, 20), rng))
    for x in (88, 98, 108):
        d.rectangle([x, 82, x + 6, 114], fill=_jitter((200, 160, 30), rng))
        d.ellipse([x - 1, 77, x + 7, 84], fill=(240, 240, 230))
    d.rectangle([48, 96, 58, 100], fill=(200, 200, 200))
    return 5.0, (-8, -52)


def _saxophone(d, rng):
    brass = _jitter((205, 150, 35), rng, light=0.05)
    d.line([(92, 40), (104, 58), (104, 140)], fill=brass, width=12, joint="curve")
    d.ellipse([98, 128, 134, 160], fill=brass)
    d.line([(126, 146), (132, 110)], fill=brass, width=16)
    d.ellipse([120, 96, 146, 116], fill=_jitter((120, 80, 10), rng))
    for y in range(66, 136, 12):
        d.ellipse([100, y, 108, y + 8], fill=(245, 235, 200))
    d.rectangle([88, 34, 94, 42], fill=(20, 20, 20))
    return -12.0, (-6, -4)


def _flute(d, rng):
    silver = _jitter((205, 205, 215), rng, hue=0.0)
    d.rectangle([34, 96, 176, 103], fill=silver, outline=(120, 120, 130))
    for x in range(70, 170, 12):
        d.ellipse([x, 97, x + 5, 102], fill=(40, 40, 50))
    d.ellipse([44, 96, 51, 103], fill=(30, 30, 30))
    return -12.0, (38, -46)


def _xylophone(d, rng):
    d.rectangle([38, 150, 162, 156], fill=(80, 50, 30))
    d.line([(50, 156), (44, 196)], fill=(80, 50, 30), width=4)
    d.line([(150, 156), (156, 196)], fill=(80, 50, 30), width=4)
    n = 8
    for i in range(n):
        hue = (i / n + rng.uniform(-0.02, 0.02)) % 1.0
        rgb = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, 0.95))
        x = 42 + i * 15
        length = 46 - i * 3.5
        d.rectangle([x, 150 - length, x + 11, 150], fill=rgb, outline=(40, 40, 40))
    for x0, x1 in ((70, 84), (130, 112)):
        d.line([(x0, 84), (x1, 118)], fill=(120, 80, 40), width=3)
        d.ellipse([x1 - 6, 114, x1 + 6, 126], fill=(240, 240, 240))
    return 0.0, (0, 10)


def _accordion(d, rng):
    red = _jitter((200, 30, 45), rng, hue=0.02)
    d.rectangle([62, 82, 84, 146], fill=red)
    for i in range(7):
        x = 84 + i * 5
        d.rectangle([x, 84, x + 5, 144], fill=(30, 30, 30) if i % 2 else (230, 230, 230))
    d.rectangle([119, 80, 130, 148], fill=red)
    d.rectangle([130, 80, 142, 148], fill=(250, 250, 245), outline=(20, 20, 20))
    for y in range(84, 146, 7):
        d.rectangle([130, y, 137, y + 3], fill=(10, 10, 10))
    for y in (94, 104, 114, 124, 134):
        for x in (66, 72, 78):
            d.ellipse([x, y, x + 3, y + 3], fill=(240, 240, 240))
    return 0.0, (0, 0)


#: name -> drawing function. Each draws the instrument in a canonical pose on a CANVAS-sized
#: layer and returns ``(rotation_degrees, (dx, dy))`` placing it against the player.
INSTRUMENT_PICTURES = {
    "accordion": _accordion,
    "acoustic_guitar": _guitar,
    "cello": _cello,
    "flute": _flute,
    "saxophone": _saxophone,
    "trumpet": _trumpet,
    "violin": _violin,
    "xylophone": _xylophone,
}


def _player(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    skin = tuple(int(c) for c in rng.choice([(241, 194, 160), (198, 134, 90), (141, 85, 54), (255, 219, 172)]))
    shirt = tuple(int(c) for c in rng.integers(30, 220, 3))
    trousers = tuple(int(c) for c in rng.integers(20, 120, 3))
    d.rounded_rectangle([70, 62, 130, 150], radius=14, fill=shirt)
    d.rectangle([76, 148, 96, 196], fill=trousers)
    d.rectangle([104, 148, 124, 196], fill=trousers)
    d.ellipse([82, 18, 118, 58], fill=skin)
    d.chord([82, 14, 118, 46], 180, 360, fill=tuple(int(c) for c in rng.integers(10, 90, 3)))
    d.line([(72, 70), (58, 110), (82, 118)], fill=shirt, width=9, joint="curve")
    d.line([(128, 70), (142, 110), (118, 118)], fill=shirt, width=9, joint="curve")


def draw_player_sprite(
    instrument: str, rng: np.random.Generator
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Draw a player holding ``instrument``.

    Returns:
        sprite: RGBA image of CANVAS x CANVAS pixels, transparent around the figure.
        box: the instrument's bounding box ``(x1, y1, x2, y2)`` in sprite pixels.
    """
    if instrument not in INSTRUMENT_PICTURES:
        raise KeyError(
            f"no picture for instrument {instrument!r}; known: {', '.join(sorted(INSTRUMENT_PICTURES))}"
        )
    sprite = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    _player(ImageDraw.Draw(sprite), rng)
    layer = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    angle, (dx, dy) = INSTRUMENT_PICTURES[instrument](ImageDraw.Draw(layer), rng)
    angle += rng.uniform(-6, 6)
    layer = layer.rotate(angle, resample=Image.BICUBIC, center=(100, 100), translate=(dx, dy))
    box = layer.getchannel("A").point(lambda a: 255 if a > 64 else 0).getbbox()
    sprite.alpha_composite(layer)
    return sprite, box
