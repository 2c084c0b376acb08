"""Drawn pictures of players and their instruments, for the embedded demo dataset.

Each instrument has its own silhouette and pose, so that telling them apart from frames is
a real visual task, and several looks, so that a model must learn the instrument rather
than one picture of it. A look (:class:`Look`) fixes four things:

- the drawing ``variant``: one of ``VARIANTS`` sets of proportions and details per
  instrument (body shapes, bell sizes, bow angles, key layouts);
- the ``palette``: a named colour scheme from ``PALETTES[instrument]`` (natural wood,
  dark, blond or painted strings; brass, silver, copper or lacquered winds; ...);
- the player's ``outfit``: a named build and clothing from ``OUTFITS`` (slim, medium or
  wide; solid, striped, checked shirt, suit or dress);
- the instrument's ``size`` relative to the player, within ``SIZE_RANGE[instrument]``.

Everything is drawn with Pillow on a square RGBA canvas of ``CANVAS`` pixels: the player
first, then the instrument on its own layer, which is scaled by the look's size and
rotated into its playing pose. The instrument layer's alpha gives its bounding box.
"""

from __future__ import annotations

import colorsys
import dataclasses

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "CANVAS",
    "VARIANTS",
    "Outfit",
    "OUTFITS",
    "PALETTES",
    "SIZE_RANGE",
    "Look",
    "INSTRUMENT_PICTURES",
    "draw_player_sprite",
]

#: Side of the square canvas a player is drawn on, in pixels.
CANVAS = 200

#: Drawing variants per instrument (different proportions and details of one instrument).
VARIANTS = 3

RGB = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Outfit:
    """A player's build and clothes.

    Attributes:
        build: ``"slim"``, ``"medium"`` or ``"wide"`` (torso width).
        pattern: ``"solid"``, ``"striped"`` (horizontal), ``"pinstriped"`` (vertical),
            ``"checked"`` or ``"suit"`` (jacket over a shirt and tie) on the top.
        top: main colour of the top.
        accent: stripe, check or tie colour.
        lower: ``"trousers"`` or ``"dress"``.
        lower_colour: colour of the trousers or the dress.
    """

    build: str
    pattern: str
    top: RGB
    accent: RGB
    lower: str
    lower_colour: RGB


#: Named outfits. A style takes one; the styles of one instrument all take different ones.
OUTFITS: dict[str, Outfit] = {
    "slim-navy": Outfit("slim", "solid", (30, 45, 110), (30, 45, 110), "trousers", (95, 95, 100)),
    "wide-red-stripes": Outfit("wide", "striped", (200, 35, 40), (245, 245, 240), "trousers", (30, 40, 80)),
    "green-check": Outfit("medium", "checked", (40, 130, 60), (20, 30, 20), "trousers", (110, 75, 40)),
    "purple-dress": Outfit("slim", "solid", (130, 50, 150), (130, 50, 150), "dress", (110, 40, 130)),
    "black-suit": Outfit("wide", "suit", (25, 25, 30), (190, 20, 30), "trousers", (25, 25, 30)),
    "yellow-pinstripe": Outfit("medium", "pinstriped", (235, 200, 50), (150, 90, 20), "trousers", (85, 90, 40)),
    "lumberjack": Outfit("slim", "checked", (190, 30, 30), (25, 20, 20), "trousers", (50, 80, 150)),
    "teal-dress": Outfit("wide", "striped", (20, 150, 150), (240, 240, 230), "dress", (15, 110, 115)),
    "grey-suit": Outfit("slim", "suit", (135, 135, 140), (30, 60, 160), "trousers", (120, 120, 125)),
    "orange-tee": Outfit("wide", "solid", (240, 120, 30), (240, 120, 30), "trousers", (40, 40, 45)),
}

_STRINGS = {
    # body, dark (trim, f-holes, scroll, bridge), board (fingerboard and neck)
    "natural": {"body": (176, 84, 24), "dark": (60, 25, 5), "board": (20, 20, 20)},
    "dark": {"body": (112, 46, 20), "dark": (35, 12, 4), "board": (15, 15, 15)},
    "blond": {"body": (228, 186, 118), "dark": (125, 82, 32), "board": (60, 40, 25)},
    "red": {"body": (185, 28, 32), "dark": (70, 8, 10), "board": (20, 20, 20)},
    "blue": {"body": (45, 85, 175), "dark": (15, 25, 75), "board": (25, 25, 30)},
    "black": {"body": (32, 32, 36), "dark": (150, 150, 155), "board": (200, 170, 90)},
    "white": {"body": (238, 234, 222), "dark": (95, 85, 70), "board": (30, 30, 30)},
}
_BRASS = {
    # metal, shade (bell rim and dark parts), keys (valve caps, key cups)
    "brass": {"metal": (232, 190, 40), "shade": (180, 130, 20), "keys": (245, 240, 225)},
    "silver": {"metal": (200, 202, 212), "shade": (120, 122, 135), "keys": (250, 250, 250)},
    "copper": {"metal": (196, 104, 58), "shade": (120, 58, 28), "keys": (235, 200, 160)},
    "black": {"metal": (30, 30, 36), "shade": (95, 95, 105), "keys": (225, 190, 60)},
    "blue": {"metal": (40, 75, 170), "shade": (18, 35, 90), "keys": (220, 220, 230)},
    "red": {"metal": (175, 30, 40), "shade": (90, 10, 15), "keys": (240, 230, 200)},
    "green": {"metal": (40, 140, 70), "shade": (15, 70, 30), "keys": (235, 235, 220)},
}

#: Named colour schemes per instrument. A style takes one; the styles of one instrument all
#: take different ones.
PALETTES: dict[str, dict[str, dict]] = {
    "violin": _STRINGS,
    "cello": _STRINGS,
    "acoustic_guitar": _STRINGS,
    "trumpet": _BRASS,
    "saxophone": _BRASS,
    "flute": {
        "silver": {"metal": (205, 205, 215), "keys": (60, 60, 70)},
        "gold": {"metal": (235, 195, 80), "keys": (120, 80, 20)},
        "wood": {"metal": (50, 30, 20), "keys": (215, 215, 220)},
        "rose": {"metal": (220, 150, 135), "keys": (120, 60, 50)},
        "green": {"metal": (45, 150, 90), "keys": (235, 235, 225)},
        "blue": {"metal": (60, 110, 200), "keys": (230, 230, 240)},
        "bronze": {"metal": (160, 110, 50), "keys": (70, 45, 20)},
    },
    "xylophone": {
        # bars: how the bars are coloured; frame: the stand
        "rainbow": {"bars": "rainbow", "frame": (80, 50, 30)},
        "rosewood": {"bars": "wood", "frame": (40, 40, 45)},
        "pastel": {"bars": "pastel", "frame": (230, 230, 225)},
        "metal": {"bars": "metal", "frame": (30, 30, 30)},
        "blue": {"bars": "blue", "frame": (150, 110, 60)},
        "warm": {"bars": "warm", "frame": (60, 60, 90)},
        "mono": {"bars": "mono", "frame": (160, 30, 30)},
    },
    "accordion": {
        # body, trim (bellows folds, grille), keys (the white keys or buttons)
        "red": {"body": (200, 30, 45), "trim": (30, 30, 30), "keys": (235, 235, 235)},
        "black": {"body": (28, 28, 32), "trim": (190, 190, 195), "keys": (240, 240, 240)},
        "pearl": {"body": (240, 236, 225), "trim": (160, 30, 40), "keys": (250, 250, 250)},
        "blue": {"body": (35, 70, 165), "trim": (230, 230, 230), "keys": (245, 245, 245)},
        "green": {"body": (30, 130, 70), "trim": (20, 20, 20), "keys": (240, 240, 230)},
        "gold": {"body": (215, 170, 50), "trim": (80, 40, 10), "keys": (250, 245, 235)},
        "purple": {"body": (110, 40, 140), "trim": (235, 225, 240), "keys": (245, 245, 245)},
    },
}

#: Range of the instrument's size relative to the player, per instrument. Large instruments
#: (cello, xylophone) keep to sizes that fit the canvas.
SIZE_RANGE: dict[str, tuple[float, float]] = {
    "accordion": (0.8, 1.3),
    "acoustic_guitar": (0.8, 1.15),
    "cello": (0.8, 1.05),
    "flute": (0.85, 1.05),
    "saxophone": (0.8, 1.2),
    "trumpet": (0.8, 1.1),
    "violin": (0.85, 1.3),
    "xylophone": (0.8, 1.1),
}


@dataclasses.dataclass(frozen=True)
class Look:
    """How one style draws an instrument and its player (see the module docstring)."""

    variant: int
    palette: str
    outfit: str
    size: float


def _jitter(rgb: RGB, rng: np.random.Generator, hue=0.02, light=0.05) -> RGB:
    """Shift a colour slightly in hue and lightness, so no two videos look identical."""
    h, l, s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    h = (h + rng.uniform(-hue, hue)) % 1.0
    l = float(np.clip(l + rng.uniform(-light, light), 0.05, 0.95))
    return tuple(int(round(255 * c)) for c in colorsys.hls_to_rgb(h, l, s))


def _colours(palette: dict, rng: np.random.Generator) -> dict:
    """A palette with every colour jittered for one video."""
    return {k: _jitter(v, rng) if isinstance(v, tuple) else v for k, v in palette.items()}


def _bowed_body(d: ImageDraw.ImageDraw, cx, top, w, h, c, *, neck=0.55, waist=0.3):
    """Violin-family body: upper and lower bouts, waist, f-holes, fingerboard, scroll."""
    wood, dark = c["body"], c["dark"]
    d.ellipse([cx - 0.42 * w, top, cx + 0.42 * w, top + 0.45 * h], fill=wood)
    d.ellipse([cx - 0.5 * w, top + 0.38 * h, cx + 0.5 * w, top + h], fill=wood)
    d.rectangle([cx - waist * w, top + 0.3 * h, cx + waist * w, top + 0.6 * h], fill=wood)
    for sx in (-1, 1):
        d.line([cx + sx * 0.2 * w, top + 0.45 * h, cx + sx * 0.2 * w, top + 0.7 * h], fill=dark, width=2)
    d.rectangle([cx - 0.07 * w, top - neck * h, cx + 0.07 * w, top + 0.6 * h], fill=c["board"])
    d.ellipse([cx - 0.1 * w, top - (neck + 0.13) * h, cx + 0.1 * w, top - (neck - 0.03) * h], fill=dark)
    d.rectangle([cx - 0.18 * w, top + 0.75 * h, cx + 0.18 * w, top + 0.8 * h], fill=dark)


_BOW_HAIR = (230, 220, 190)


def _violin(d, c, variant, rng):
    # standard, slim with a long neck, broad fiddle
    w, h, neck, waist = ((34, 50, 0.55, 0.3), (28, 54, 0.65, 0.22), (40, 46, 0.5, 0.34))[variant]
    _bowed_body(d, 100, 60, w, h, c, neck=neck, waist=waist)
    bow = (((60, 110), (150, 80)), ((72, 128), (142, 58)), ((52, 100), (156, 94)))[variant]
    d.line(bow, fill=_BOW_HAIR, width=2)
    d.line([(bow[0][0], bow[0][1] + 2), (bow[1][0], bow[1][1] + 2)], fill=(90, 50, 20), width=1)
    return -40.0 + (0.0, 6.0, -5.0)[variant], (14, -30), (100, 105)


def _cello(d, c, variant, rng):
    # standard, narrow and tall, wide with a long endpin
    w, h, waist = ((70, 95, 0.3), (58, 100, 0.22), (80, 88, 0.36))[variant]
    top = 185 - h
    _bowed_body(d, 100, top, w, h, c, neck=0.62, waist=waist)
    d.line([100, top + h - 2, 100, 198], fill=(90, 90, 90), width=3)  # endpin
    bow = (((40, 150), (165, 135)), ((45, 160), (160, 125)), ((35, 140), (168, 146)))[variant]
    d.line(bow, fill=_BOW_HAIR, width=3)
    return 8.0, (0, 0), (100, 196)


def _guitar(d, c, variant, rng):
    wood, dark = c["body"], c["dark"]
    if variant == 0:  # classical: a clear waist
        lower, upper, waist = [68, 110, 132, 174], [76, 84, 124, 128], [80, 112, 120, 130]
    elif variant == 1:  # dreadnought: big bouts, little waist
        lower, upper, waist = [62, 106, 138, 178], [70, 80, 130, 128], [68, 104, 132, 134]
    else:  # parlour: a small body
        lower, upper, waist = [74, 116, 126, 166], [80, 94, 120, 128], [84, 116, 116, 130]
    d.ellipse(lower, fill=wood, outline=dark, width=2)
    d.ellipse(upper, fill=wood, outline=dark, width=2)
    d.rectangle(waist, fill=wood)
    hole = 9 if variant != 1 else 11
    d.ellipse([100 - hole, 120 - hole, 100 + hole, 120 + hole], fill=(15, 10, 5))
    if variant == 1:
        d.polygon([(108, 126), (124, 122), (122, 142), (110, 134)], fill=dark)  # pickguard
    d.rectangle([86, lower[3] - 26, 114, lower[3] - 21], fill=dark)
    neck_top = (18, 18, 10)[variant]
    d.rectangle([95, neck_top, 105, upper[1] + 4], fill=c["board"])
    d.polygon([(92, neck_top - 14), (108, neck_top - 14), (106, neck_top + 2), (94, neck_top + 2)], fill=dark)
    for x in (97, 100, 103):
        d.line([x, neck_top + 2, x, lower[3] - 24], fill=(240, 240, 240), width=1)
    return 62.0 + (0.0, -6.0, 5.0)[variant], (0, -12), (100, 130)


def _trumpet(d, c, variant, rng):
    metal, shade = c["metal"], c["shade"]
    # standard, large bell, compact (cornet-like)
    x0, x1, bell, tube = ((58, 140, (34, 24), 8), (58, 136, (46, 32), 8), (70, 128, (30, 20), 9))[variant]
    d.rectangle([x0, 94, x1, 94 + tube], fill=metal)
    d.rectangle([x0 + 12, 104, x1 - 12, 111], fill=metal)
    if variant == 2:
        d.arc([x0 - 4, 94, x0 + 14, 111], 90, 270, fill=metal, width=6)
    blen, bhalf = bell
    d.polygon([(x1 - 2, 92), (x1 + blen, 98 - bhalf), (x1 + blen, 98 + bhalf), (x1 - 2, 104)], fill=metal)
    d.ellipse([x1 + blen - 6, 98 - bhalf, x1 + blen + 6, 98 + bhalf], fill=shade)
    for x in (88, 98, 108) if variant != 2 else (90, 99, 108):
        d.rectangle([x, 82, x + 6, 114], fill=shade)
        d.ellipse([x - 1, 77, x + 7, 84], fill=c["keys"])
    d.rectangle([x0 - 10, 96, x0, 100], fill=(200, 200, 200))
    return 5.0, (-8, -52), (x0 - 10, 98)


def _saxophone(d, c, variant, rng):
    metal, shade = c["metal"], c["shade"]
    # alto, tenor (longer, bigger bell, bent neck), wide-bodied with an outturned bell
    body, width, bell = ((140, 12, 26), (150, 14, 32), (136, 16, 24))[variant]
    neck = ((92, 40), (84, 40), (94, 44))[variant]
    d.line([neck, (104, 58), (104, body)], fill=metal, width=width, joint="curve")
    d.ellipse([98, body - 12, 134, body + 20], fill=metal)
    bx = 132 if variant != 2 else 140
    d.line([(126, body + 6), (bx, body - 30)], fill=metal, width=width + 4)
    d.ellipse([bx - bell // 2, body - 44, bx + bell // 2, body - 44 + 0.8 * bell], fill=shade)
    for y in range(66, body - 4, 12):
        d.ellipse([100, y, 108, y + 8], fill=c["keys"])
    d.rectangle([neck[0] - 4, neck[1] - 6, neck[0] + 2, neck[1] + 2], fill=(20, 20, 20))
    return -12.0 + (0.0, -4.0, 4.0)[variant], (-6, -4), neck


def _flute(d, c, variant, rng):
    metal, keys = c["metal"], c["keys"]
    # concert flute, long with key rods, short (piccolo-like)
    x0, x1, step = ((44, 160, 11), (40, 166, 8), (56, 140, 12))[variant]
    d.rectangle([x0, 96, x1, 103], fill=metal, outline=(120, 120, 130))
    if variant == 1:
        d.line([x0 + 40, 95, x1 - 4, 95], fill=keys, width=1)
    for x in range(x0 + 30, x1 - 6, step):
        d.ellipse([x, 97, x + 5, 102], fill=keys)
    d.ellipse([x0 + 10, 96, x0 + 17, 103], fill=(30, 30, 30))  # embouchure hole
    return -12.0 + (0.0, -3.0, 3.0)[variant], (30, -46), (x0 + 13, 100)


def _bar_colour(scheme: str, i: int, n: int, rng: np.random.Generator) -> RGB:
    t = i / max(n - 1, 1)
    if scheme == "rainbow":
        rgb = colorsys.hsv_to_rgb((i / n + rng.uniform(-0.02, 0.02)) % 1.0, 0.85, 0.95)
    elif scheme == "wood":
        rgb = colorsys.hsv_to_rgb(0.06, 0.7, 0.45 + 0.2 * (i % 2))
    elif scheme == "pastel":
        rgb = colorsys.hsv_to_rgb((0.5 + i / n) % 1.0, 0.3, 1.0)
    elif scheme == "metal":
        rgb = (0.75 + 0.1 * (i % 2), 0.76 + 0.1 * (i % 2), 0.8 + 0.1 * (i % 2))
    elif scheme == "blue":
        rgb = colorsys.hsv_to_rgb(0.6, 0.4 + 0.5 * t, 0.95 - 0.3 * t)
    elif scheme == "warm":
        rgb = colorsys.hsv_to_rgb(0.0 + 0.14 * t, 0.9, 0.95)
    else:  # mono: one light colour
        rgb = (0.95, 0.92, 0.82)
    return tuple(int(255 * v) for v in rgb)


def _xylophone(d, c, variant, rng):
    frame = c["frame"]
    # eight bars, ten narrow bars, six wide bars on a low stand
    n, bar, gap, longest, shrink, rail = ((8, 11, 4, 46, 3.5, 150), (10, 9, 3, 50, 3.0, 150),
                                          (6, 15, 5, 44, 4.5, 158))[variant]
    span = n * bar + (n - 1) * gap
    left = 100 - span / 2
    d.rectangle([left - 4, rail, left + span + 4, rail + 6], fill=frame)
    d.line([(left + 8, rail + 6), (left + 2, 196)], fill=frame, width=4)
    d.line([(left + span - 8, rail + 6), (left + span - 2, 196)], fill=frame, width=4)
    for i in range(n):
        x = left + i * (bar + gap)
        length = longest - i * shrink
        d.rectangle([x, rail - length, x + bar, rail], fill=_bar_colour(c["bars"], i, n, rng), outline=(40, 40, 40))
    head = (240, 240, 240) if c["bars"] != "mono" else (200, 40, 40)
    for x0, x1 in ((70, 84), (130, 112)):
        d.line([(x0, rail - 66), (x1, rail - 32)], fill=(120, 80, 40), width=3)
        d.ellipse([x1 - 6, rail - 36, x1 + 6, rail - 24], fill=head)
    return 0.0, (0, 4), (100, 196)


def _accordion(d, c, variant, rng):
    body, trim, keys = c["body"], c["trim"], c["keys"]
    # piano accordion, wide bellows, small button accordion
    top, bottom, folds = ((82, 146, 7), (80, 148, 10), (88, 140, 6))[variant]
    d.rectangle([62, top, 84, bottom], fill=body)
    for i in range(folds):
        x = 84 + i * 5
        d.rectangle([x, top + 2, x + 5, bottom - 2], fill=trim if i % 2 else keys)
    right = 84 + folds * 5
    d.rectangle([right, top - 2, right + 11, bottom + 2], fill=body)
    if variant == 2:  # a button board
        d.rectangle([right + 11, top - 2, right + 23, bottom + 2], fill=body, outline=trim)
        for y in range(top + 2, bottom - 2, 8):
            for dx in (1, 6):
                d.ellipse([right + 11 + dx, y, right + 16 + dx, y + 5], fill=keys)
    else:
        d.rectangle([right + 11, top - 2, right + 23, bottom + 2], fill=keys, outline=(20, 20, 20))
        for y in range(top + 2, bottom, 7):
            d.rectangle([right + 11, y, right + 18, y + 3], fill=(10, 10, 10))
    for y in range(top + 12, bottom - 6, 10):
        for x in (66, 72, 78):
            d.ellipse([x, y, x + 3, y + 3], fill=keys)
    return 0.0, (-(folds - 7) * 2.5, 0), (100, 114)


#: name -> drawing function ``(draw, colours, variant, rng)``. Each draws the instrument in
#: a canonical pose on a CANVAS-sized layer and returns ``(rotation_degrees, (dx, dy),
#: anchor)``: the rotation and shift placing it against the player, and the layer point
#: that stays put when a look scales the instrument (where it meets the mouth, chin, hands
#: or floor).
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

_TORSO = {"slim": 24, "medium": 30, "wide": 38}  # half-widths in canvas pixels
_SKINS = ((241, 194, 160), (198, 134, 90), (141, 85, 54), (255, 219, 172), (110, 70, 45))


def _top_cloth(box, outfit: Outfit) -> Image.Image:
    """The top's cloth for the torso box: a solid colour with the outfit's pattern."""
    cloth = Image.new("RGB", (CANVAS, CANVAS), outfit.top)
    d = ImageDraw.Draw(cloth)
    x1, y1, x2, y2 = box
    if outfit.pattern == "striped":
        for y in range(y1 + 4, y2, 12):
            d.rectangle([x1, y, x2, y + 5], fill=outfit.accent)
    elif outfit.pattern == "pinstriped":
        for x in range(x1 + 3, x2, 8):
            d.line([x, y1, x, y2], fill=outfit.accent, width=2)
    elif outfit.pattern == "checked":
        for i, y in enumerate(range(y1, y2, 9)):
            for j, x in enumerate(range(x1, x2, 9)):
                if (i + j) % 2:
                    d.rectangle([x, y, x + 8, y + 8], fill=outfit.accent)
    elif outfit.pattern == "suit":
        cx = (x1 + x2) // 2
        d.polygon([(cx - 12, y1), (cx + 12, y1), (cx, y1 + 40)], fill=(245, 245, 245))
        d.polygon([(cx - 3, y1 + 4), (cx + 3, y1 + 4), (cx + 4, y1 + 34), (cx, y1 + 40), (cx - 4, y1 + 34)],
                  fill=outfit.accent)
    return cloth


def _player(sprite: Image.Image, outfit: Outfit, rng: np.random.Generator) -> None:
    """Draw the player in ``outfit`` with a skin and hair drawn from ``rng``."""
    d = ImageDraw.Draw(sprite)
    skin = tuple(int(c) for c in _SKINS[int(rng.integers(len(_SKINS)))])
    hair = tuple(int(c) for c in rng.integers(10, 110, 3))
    half = _TORSO[outfit.build]
    torso = (100 - half, 62, 100 + half, 150)
    legs = max(10, half - 8)
    if outfit.lower == "dress":
        d.rectangle([100 - legs + 4, 170, 100 - 6, 196], fill=skin)
        d.rectangle([100 + 6, 170, 100 + legs - 4, 196], fill=skin)
        d.polygon([(100 - half + 4, 130), (100 + half - 4, 130), (100 + half + 10, 176), (100 - half - 10, 176)],
                  fill=outfit.lower_colour)
    else:
        d.rectangle([100 - legs - 4, 148, 100 - 4, 196], fill=outfit.lower_colour)
        d.rectangle([100 + 4, 148, 100 + legs + 4, 196], fill=outfit.lower_colour)
    mask = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(mask).rounded_rectangle(torso, radius=14, fill=255)
    sprite.paste(_top_cloth(torso, outfit), (0, 0), mask)
    sleeve = outfit.top
    d.line([(torso[0] + 2, 70), (torso[0] - 12, 110), (torso[0] + 12, 118)], fill=sleeve, width=9, joint="curve")
    d.line([(torso[2] - 2, 70), (torso[2] + 12, 110), (torso[2] - 12, 118)], fill=sleeve, width=9, joint="curve")
    d.ellipse([82, 18, 118, 58], fill=skin)
    d.chord([82, 14, 118, 46], 180, 360, fill=hair)


def draw_player_sprite(
    instrument: str, look: Look, rng: np.random.Generator
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Draw a player holding ``instrument`` in the given look.

    ``rng`` draws what varies between videos of one look: the player's skin and hair, a
    slight jitter of every colour and a few degrees of the instrument's angle.

    Returns:
        sprite: RGBA image of CANVAS x CANVAS pixels, transparent around the figure.
        box: the instrument's bounding box ``(x1, y1, x2, y2)`` in sprite pixels.
    """
    if instrument not in INSTRUMENT_PICTURES:
        raise KeyError(
            f"no picture for instrument {instrument!r}; known: {', '.join(sorted(INSTRUMENT_PICTURES))}"
        )
    if not 0 <= look.variant < VARIANTS:
        raise ValueError(f"look.variant must be in 0..{VARIANTS - 1}, got {look.variant}")
    sprite = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    _player(sprite, OUTFITS[look.outfit], rng)
    layer = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    colours = _colours(PALETTES[instrument][look.palette], rng)
    angle, (dx, dy), (ax, ay) = INSTRUMENT_PICTURES[instrument](ImageDraw.Draw(layer), colours, look.variant, rng)
    if look.size != 1.0:
        side = int(round(CANVAS * look.size))
        scaled = layer.resize((side, side), Image.BICUBIC)
        layer = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
        layer.paste(scaled, (int(round(ax * (1 - look.size))), int(round(ay * (1 - look.size)))))
    angle += rng.uniform(-6, 6)
    layer = layer.rotate(angle, resample=Image.BICUBIC, center=(100, 100), translate=(dx, dy))
    box = layer.getchannel("A").point(lambda a: 255 if a > 64 else 0).getbbox()
    sprite.alpha_composite(layer)
    return sprite, box
