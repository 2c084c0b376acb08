"""The demo's scenes: a room behind the players, a lighting that drifts over the clip, and
where each player stands and how it moves.

Every video has its own background (:func:`draw_background`): a gradient wall with a
texture (stripes, checkers or noise), a floor, furniture-like clutter and a vignette,
rendered once, and a lighting (:class:`Lighting`) that drifts in brightness and colour
temperature over the clip (one lookup table per frame). A player (:func:`make_player`)
stands at a random place and scale (a solo player's sprite is 0.45-0.95 of the frame
height) and moves and breathes in scale over time (:func:`place_player`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

from avsep.demo.pictures import CANVAS, draw_player_sprite

__all__ = ["draw_background", "Lighting", "Player", "make_player", "place_player"]


def _colour(rng: np.random.Generator, low=30, high=230) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, 3))


def _texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A wall or floor texture, shape ``(height, width)``, around 0: none, stripes,
    checkers, blotchy or fine noise."""
    kind = int(rng.integers(5))
    yy, xx = np.mgrid[0:height, 0:width]
    amp = rng.uniform(6, 24)
    if kind == 1:
        period = rng.uniform(6, 30)
        angle = rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4])
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        return amp * np.where(phase % 1.0 < 0.5, 1.0, -1.0)
    if kind == 2:
        cell = int(rng.integers(8, 32))
        return amp * np.where((yy // cell + xx // cell) % 2, 1.0, -1.0)
    if kind == 3:
        coarse = rng.standard_normal((height // 16 + 2, width // 16 + 2))
        blot = Image.fromarray(coarse.astype(np.float32), mode="F").resize((width + 32, height + 32), Image.BILINEAR)
        return amp * np.asarray(blot)[16 : 16 + height, 16 : 16 + width]
    if kind == 4:
        return rng.normal(0, amp / 2, (height, width))
    return np.zeros((height, width))


def _clutter(d: ImageDraw.ImageDraw, width: int, height: int, floor: int, rng: np.random.Generator) -> None:
    """Furniture-like shapes: cabinets, shelves with books, frames, windows, lamps, plants,
    cables."""
    for _ in range(int(rng.integers(3, 9))):
        kind = int(rng.integers(7))
        w = int(rng.integers(max(12, width // 12), max(13, width // 3)))
        h = int(rng.integers(max(20, height // 10), max(21, height // 2)))
        x0, y0 = int(rng.integers(-w // 2, width - w // 2)), int(rng.integers(0, max(1, floor - h // 2)))
        fill, edge = _colour(rng), _colour(rng, 10, 120)
        if kind == 0:  # cabinet standing on the floor, with knobs
            y0 = floor - h
            d.rectangle([x0, y0, x0 + w, floor], fill=fill, outline=edge, width=2)
            for kx in (x0 + w // 3, x0 + 2 * w // 3):
                d.ellipse([kx - 2, y0 + h // 3, kx + 2, y0 + h // 3 + 4], fill=edge)
        elif kind == 1:  # shelf with books
            d.rectangle([x0, y0 + h // 3, x0 + w, y0 + h // 3 + 3], fill=edge)
            x = x0 + 2
            while x < x0 + w - 4:
                bw, bh = int(rng.integers(3, 8)), int(rng.integers(h // 6 + 2, h // 3 + 3))
                d.rectangle([x, y0 + h // 3 - bh, x + bw, y0 + h // 3], fill=_colour(rng))
                x += bw + 1
        elif kind == 2:  # picture frame
            d.rectangle([x0, y0, x0 + w, y0 + h // 2], fill=edge)
            d.rectangle([x0 + 4, y0 + 4, x0 + w - 4, y0 + h // 2 - 4], fill=fill)
        elif kind == 3:  # window
            d.rectangle([x0, y0, x0 + w, y0 + h], fill=_colour(rng, 170, 255), outline=edge, width=3)
            d.line([x0 + w // 2, y0, x0 + w // 2, y0 + h], fill=edge, width=2)
            d.line([x0, y0 + h // 2, x0 + w, y0 + h // 2], fill=edge, width=2)
        elif kind == 4:  # lamp or clock
            r = max(4, min(w, h) // 4)
            d.ellipse([x0, y0, x0 + 2 * r, y0 + 2 * r], fill=fill, outline=edge, width=2)
            if rng.random() < 0.5:
                d.line([x0 + r, y0 + 2 * r, x0 + r, floor], fill=edge, width=2)
        elif kind == 5:  # plant in a pot on the floor
            r = max(5, w // 4)
            cx = x0 + w // 2
            d.rectangle([cx - r // 2, floor - r, cx + r // 2, floor], fill=edge)
            for _ in range(5):
                ox, oy = int(rng.integers(-r, r + 1)), int(rng.integers(-2 * r, -r // 2))
                d.ellipse([cx + ox - r // 2, floor - r + oy - r // 2, cx + ox + r // 2, floor - r + oy + r // 2],
                          fill=(int(rng.integers(20, 80)), int(rng.integers(100, 180)), int(rng.integers(20, 80))))
        else:  # a cable or a moulding line
            d.line([x0, y0, x0 + w, y0 + int(rng.integers(-h, h + 1))], fill=edge, width=int(rng.integers(1, 4)))


def draw_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A room: a gradient wall with a texture, a textured floor, clutter and a vignette.

    Returns:
        uint8 array, shape ``(height, width, 3)``.
    """
    yy, xx = np.mgrid[0:height, 0:width]
    yy, xx = yy / height, xx / width
    c1, c2 = (np.array(_colour(rng, 25, 235), dtype=float) for _ in range(2))
    kind = int(rng.integers(4))
    if kind == 0:
        ramp = yy
    elif kind == 1:
        ramp = xx
    elif kind == 2:
        ramp = (xx + yy) / 2
    else:
        ramp = np.clip(np.hypot(xx - rng.uniform(0.2, 0.8), yy - rng.uniform(0.1, 0.5)) * 1.4, 0, 1)
    img = c1 * (1 - ramp[..., None]) + c2 * ramp[..., None]
    img += _texture(height, width, rng)[..., None]
    floor = int(height * rng.uniform(0.62, 0.88))
    floor_img = np.array(_colour(rng, 30, 180), dtype=float) + _texture(height - floor, width, rng)[..., None]
    floor_img *= np.linspace(0.85, 1.1, height - floor)[:, None, None]
    img[floor:] = floor_img
    pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    _clutter(ImageDraw.Draw(pic), width, height, floor, rng)
    img = np.asarray(pic, dtype=float)
    if rng.random() < 0.7:
        r2 = (xx - 0.5) ** 2 + (yy - 0.5) ** 2
        img *= (1 - rng.uniform(0.2, 0.9) * r2)[..., None]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclasses.dataclass
class Lighting:
    """A slow drift of brightness and colour temperature over a video."""

    exposure: float
    amp: float  # brightness swing, a fraction
    warmth: float  # colour temperature swing: red up and blue down by this fraction
    freqs: tuple[float, float]
    phases: tuple[float, float]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Lighting:
        return cls(
            exposure=float(rng.uniform(0.75, 1.15)),
            amp=float(rng.uniform(0.03, 0.2)),
            warmth=float(rng.uniform(0.0, 0.12)),
            freqs=tuple(float(f) for f in rng.uniform(0.03, 0.15, 2)),
            phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 2)),
        )

    def lut(self, t: float) -> list[int]:
        """The per-channel lookup table (768 entries, R then G then B) of time ``t``."""
        gain = self.exposure * (1 + self.amp * np.sin(2 * np.pi * self.freqs[0] * t + self.phases[0]))
        tone = self.warmth * np.sin(2 * np.pi * self.freqs[1] * t + self.phases[1])
        ramp = np.arange(256.0)
        return np.concatenate(
            [np.clip(ramp * gain * g, 0, 255) for g in (1 + tone, 1.0, 1 - tone)]
        ).astype(int).tolist()


@dataclasses.dataclass
class Player:
    sprite: Image.Image
    box: tuple[int, int, int, int]
    center: tuple[float, float]  # in frame pixels
    size: float  # sprite side in frame pixels
    drift: np.ndarray  # amplitudes and frequencies of the motion


def make_player(instrument, look, rng, x_range, width, height, size_range) -> Player:
    """A player of ``look`` at a random scale (sprite side a fraction ``size_range`` of the
    frame height) and place: inside ``x_range`` (fractions of the width), feet near the
    floor, head in the frame."""
    sprite, box = draw_player_sprite(instrument, look, rng)
    size = height * rng.uniform(*size_range)
    # The figure and its instrument span about 0.6 of the sprite's side.
    margin = 0.3 * size / width
    lo, hi = max(x_range[0], margin), min(x_range[1], 1 - margin)
    cx = rng.uniform(lo, hi) if lo < hi else (x_range[0] + x_range[1]) / 2
    bottom = rng.uniform(0.85, 1.04) * height
    cy = max(bottom - size / 2, size / 2 - 0.04 * height)
    drift = np.concatenate([rng.uniform(0.01, 0.05, 2), rng.uniform(0.05, 0.25, 3), rng.uniform(0, 6.3, 3)])
    return Player(sprite, box, (cx * width, cy), size, drift)


def place_player(player: Player, t: float, width: int, height: int):
    """Where the player is drawn at time ``t``: (resized sprite, top-left, box in frame)."""
    ax, ay, fx, fy, fs, px, py, ps = player.drift
    scale = 1.0 + 0.08 * np.sin(2 * np.pi * fs * t + ps)
    side = max(8, int(round(player.size * scale)))
    cx = player.center[0] + ax * width * np.sin(2 * np.pi * fx * t + px)
    cy = player.center[1] + ay * height * np.sin(2 * np.pi * fy * t + py)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    k = side / CANVAS
    x1, y1, x2, y2 = player.box
    box = (
        max(0, x0 + x1 * k), max(0, y0 + y1 * k), min(width, x0 + x2 * k), min(height, y0 + y2 * k)
    )
    return player.sprite.resize((side, side), Image.BILINEAR), (x0, y0), box
