"""A synthetic, class-agnostic salient-object data set, to train a saliency network offline.

The paper's saliency maps come from a detector trained on MSRA-B, whose objects have nothing to
do with PASCAL VOC's classes. This generator plays MSRA-B's part for the synthetic VOC data of
:mod:`seenet.data.synthetic` and shares no class, part or context with it: no vehicle outlines,
none of its part colours, none of its sky, water, road or rails backgrounds. Every image holds one
to three *salient* objects, random shapes (polygons, ellipses, stars, blobs) in random colours of
any saturation with a texture of their own (plain, shaded, stripes, checks, concentric rings,
mottling). Most objects (60 %) have one to three attached parts in colours and textures of their
own, thin limbs reaching out of them or smaller shapes on their edge, as real salient objects have
handles, legs and heads: the mask holds the whole object, parts included. The background is smooth
(a linear or radial gradient, clouds, patchwork) or textured (a grating, speckle, lines), muted or
saturated, and may hold faint shapes of low contrast, which are *not* salient and not in the mask.
Colour, saturation and texture are drawn alike for objects and backgrounds, so none of them alone
marks an object: what makes an object salient here is what makes it salient in photographs, a
shape that contrasts with its surroundings. The part colours of the VOC-style data appear neither
on objects nor on backgrounds, so they are no cue either way.

The files follow the layout :class:`seenet.data.sod.SalientObjectDataset` reads by default::

    root/
      images/<id>.jpg    RGB images (JPEG quality 95)
      masks/<id>.png     grey masks, 255 on the objects, 0 elsewhere
      sod.json           the generator's settings

Image ``i`` depends only on ``(seed, i)``.

Example:
    >>> sample = render_sod_sample(np.random.default_rng(0), size=48)
    >>> sample.image.shape, sample.image.dtype, sample.mask.dtype
    ((48, 48, 3), dtype('uint8'), dtype('bool'))
    >>> 1 <= len(sample.shapes) <= 3 and bool(sample.mask.any())
    True
"""

from __future__ import annotations

import colorsys
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .._io import atomic_write
from .synthetic import _PART_COLOURS

__all__ = [
    "SOD_SHAPES",
    "SOD_TEXTURES",
    "SOD_BACKGROUNDS",
    "SODSample",
    "render_sod_sample",
    "make_synthetic_sod",
]

#: Object outlines the generator draws.
SOD_SHAPES: tuple[str, ...] = ("polygon", "ellipse", "star", "blob")
#: Object textures.
SOD_TEXTURES: tuple[str, ...] = ("shaded", "checks", "rings", "mottled", "plain", "stripes")
#: Background kinds: smooth ones and textured ones, so that texture alone never says "object".
SOD_BACKGROUNDS: tuple[str, ...] = (
    "linear", "radial", "clouds", "patchwork", "grating", "speckle", "lines",
)

_STREAM = 0x50D  # keeps these random streams apart from seenet.data.synthetic's
_MIN_CONTRAST = 70.0  # least RGB distance between an object's colour and the background under it
_VOC_PART_COLOURS = np.array(list(_PART_COLOURS.values()), np.float32)
_PART_DISTANCE = 60.0  # least RGB distance between an object's colour and those part colours
_PART_PROB = 0.6  # probability that an object has attached parts


def _near_part_colour(colour: np.ndarray) -> bool:
    """Whether ``colour`` is within ``_PART_DISTANCE`` of a part colour of the VOC-style data."""
    return bool(np.linalg.norm(_VOC_PART_COLOURS - colour, axis=1).min() < _PART_DISTANCE)


@dataclass(frozen=True)
class SODSample:
    """One generated image with its object mask.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB image.
        mask: ``(H, W)`` bool, the union of the salient objects.
        shapes: The outline kind of each object (in :data:`SOD_SHAPES`), in drawing order.
        parts: How many parts (limbs or smaller shapes) are attached to each object, in the
            same order.
        background: The background kind (in :data:`SOD_BACKGROUNDS`).
    """

    image: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    shapes: tuple[str, ...]
    parts: tuple[int, ...]
    background: str


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32) * 255


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Noise in [0, 1] from a ``cells``×``cells`` random grid, bicubically upsampled."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    img = Image.fromarray(grid).resize((size, size), Image.BICUBIC)
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)


def _grating(rng: np.random.Generator, size: int, period: tuple[float, float]) -> np.ndarray:
    """A sinusoidal grating in [0, 1] at a random angle, period (pixels) and phase."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    t = (xx * np.cos(angle) + yy * np.sin(angle)) / rng.uniform(*period)
    return 0.5 + 0.5 * np.sin(2 * np.pi * t + rng.uniform(0, 2 * np.pi))


def _background(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """A background, float32 ``(size, size, 3)`` in [0, 255], muted or saturated."""
    hue = rng.random()
    saturation = rng.uniform(0.0, 0.8)
    a = _hsv(hue, saturation, rng.uniform(0.3, 0.95))
    b = _hsv(hue + rng.uniform(-0.25, 0.25), rng.uniform(0.0, 0.8), rng.uniform(0.3, 0.95))
    # no part colour of the VOC-style data in backgrounds either: a cue neither way
    while _near_part_colour(a):
        a = _hsv(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.3, 0.95))
    while _near_part_colour(b):
        b = _hsv(hue + rng.uniform(-0.25, 0.25), rng.uniform(0.0, 0.8), rng.uniform(0.3, 0.95))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "linear":
        angle = rng.uniform(0, 2 * np.pi)
        t = (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "radial":
        cy, cx = rng.uniform(0.0, 1.0, 2)
        t = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        t = t / max(float(t.max()), 1e-6)
    elif kind == "clouds":
        t = 0.6 * _smooth_noise(rng, size, 3) + 0.4 * _smooth_noise(rng, size, 7)
    elif kind == "patchwork":
        levels = int(rng.integers(3, 5))
        t = np.floor(_smooth_noise(rng, size, 5) * levels) / (levels - 1)
    elif kind == "grating":
        t = _grating(rng, size, (3.0, 14.0)) * rng.uniform(0.3, 1.0)
    elif kind == "speckle":
        grain = int(rng.integers(1, 4))
        t = np.asarray(Image.fromarray(rng.random((size // grain + 1,) * 2).astype(np.float32))
                       .resize((size, size), Image.NEAREST), np.float32)  # fmt: skip
        t = t * rng.uniform(0.3, 0.9)
    elif kind == "lines":
        spacing = rng.uniform(0.08, 0.3)
        width = rng.uniform(0.01, 0.04)
        angle = rng.uniform(0, np.pi)
        u = np.mod(xx * np.cos(angle) + yy * np.sin(angle), spacing)
        dashes = np.mod(-xx * np.sin(angle) + yy * np.cos(angle), rng.uniform(0.05, 0.2))
        solid = rng.random() < 0.5
        t = ((u < width) & (solid | (dashes < 0.06))).astype(np.float32)
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(f"kind must be one of {SOD_BACKGROUNDS}, got {kind!r}")
    img = a * (1 - t[..., None]) + b * t[..., None]
    return img.astype(np.float32)


def _outline(
    rng: np.random.Generator, kind: str, cx: float, cy: float, radius: float
) -> list[tuple[float, float]]:
    """Vertices of an object outline centred at ``(cx, cy)`` of about ``radius``."""
    turn = rng.uniform(0, 2 * np.pi)
    if kind == "polygon":
        n = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = radius * rng.uniform(0.6, 1.0, n)
    elif kind == "ellipse":
        angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        ry = rng.uniform(0.45, 1.0)
        radii = radius / np.sqrt(np.cos(angles) ** 2 + (np.sin(angles) / ry) ** 2)
    elif kind == "star":
        n = int(rng.integers(5, 9))
        angles = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
        radii = np.where(np.arange(2 * n) % 2 == 0, radius, radius * rng.uniform(0.4, 0.6))
    elif kind == "blob":
        angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        wobble = sum(
            rng.uniform(0.05, 0.18) * np.sin(k * angles + rng.uniform(0, 2 * np.pi))
            for k in (2, 3, 4)
        )
        radii = radius * (0.8 + wobble)
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(f"kind must be one of {SOD_SHAPES}, got {kind!r}")
    return [
        (float(cx + r * np.cos(t + turn)), float(cy + r * np.sin(t + turn)))
        for t, r in zip(angles, radii)
    ]


def _fill(size: int, outline: list[tuple[float, float]]) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon(outline, fill=1)
    return np.asarray(canvas, dtype=bool)


def _limb(
    size: int, start: tuple[float, float], end: tuple[float, float], width: int
) -> np.ndarray:
    """A straight band ``width`` pixels wide from ``start`` to ``end``."""
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).line([start, end], fill=1, width=width)
    return np.asarray(canvas, dtype=bool)


def _attached_parts(
    rng: np.random.Generator, size: int, cx: float, cy: float, radius: float
) -> list[np.ndarray]:
    """One to three regions attached to an object centred at ``(cx, cy)`` of about ``radius``.

    Each is a thin limb that starts inside the object and reaches out of it (2 to 5 pixels wide
    at 112 pixels), or a smaller shape centred on the object's edge: the handles, legs, heads and
    attachments, in colours of their own, that real salient objects have.
    """
    regions = []
    for _ in range(int(rng.integers(1, 4))):
        angle = rng.uniform(0, 2 * np.pi)
        if rng.random() < 0.5:
            r0 = radius * rng.uniform(0.2, 0.6)
            length = radius * rng.uniform(0.8, 1.6)
            bend = angle + rng.uniform(-0.5, 0.5)
            start = (cx + r0 * np.cos(angle), cy + r0 * np.sin(angle))
            end = (start[0] + length * np.cos(bend), start[1] + length * np.sin(bend))
            width = max(2, int(round(size * rng.uniform(0.015, 0.045))))
            regions.append(_limb(size, start, end, width))
        else:
            kind = SOD_SHAPES[int(rng.integers(len(SOD_SHAPES)))]
            r = radius * rng.uniform(0.8, 1.0)
            px, py = cx + r * np.cos(angle), cy + r * np.sin(angle)
            outline = _outline(rng, kind, px, py, radius * rng.uniform(0.25, 0.5))
            regions.append(_fill(size, outline))
    return regions


def _texture(
    rng: np.random.Generator, kind: str, colour: np.ndarray, size: int, cx: float, cy: float
) -> np.ndarray:
    """An object's look, float32 ``(size, size, 3)``: ``colour`` with a pattern of its own."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    second = np.clip(colour * rng.uniform(0.55, 0.8) + rng.normal(0, 12, 3), 0, 255)
    if kind == "shaded":
        angle = rng.uniform(0, 2 * np.pi)
        t = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / size
        return (colour * (1.0 + 0.5 * t[..., None])).astype(np.float32)
    if kind == "checks":
        cell = rng.uniform(3.0, 7.0)
        t = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2).astype(np.float32)
    elif kind == "rings":
        period = rng.uniform(4.0, 8.0)
        t = 0.5 + 0.5 * np.cos(2 * np.pi * np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / period)
    elif kind == "mottled":
        t = _smooth_noise(rng, size, max(4, size // 8))
    elif kind == "plain":
        t = rng.normal(0, 0.08, (size, size)).astype(np.float32)
    elif kind == "stripes":
        t = _grating(rng, size, (3.0, 9.0)) * rng.uniform(0.2, 0.7)
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(f"kind must be one of {SOD_TEXTURES}, got {kind!r}")
    return (colour * (1 - t[..., None]) + second * t[..., None]).astype(np.float32)


def _salient_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A colour of any saturation far enough (RGB distance) from the background colour ``under``.

    Colours near the part colours of :mod:`seenet.data.synthetic` are never drawn, so that on
    that data a part's colour is no cue for "salient".
    """
    best, best_d = None, -1.0
    for _ in range(16):
        colour = _hsv(rng.random(), rng.uniform(0.0, 1.0), rng.uniform(0.3, 1.0))
        while _near_part_colour(colour):
            colour = _hsv(rng.random(), rng.uniform(0.0, 1.0), rng.uniform(0.3, 1.0))
        d = float(np.linalg.norm(colour - under))
        if d > best_d:
            best, best_d = colour, d
        if d >= _MIN_CONTRAST:
            break
    assert best is not None
    return best


def render_sod_sample(rng: np.random.Generator, size: int = 112) -> SODSample:
    """Draw one synthetic salient-object image with its exact mask.

    Args:
        rng: The random generator (the only source of randomness).
        size: Image side in pixels (square images), at least 32.

    Returns:
        The :class:`SODSample`.

    Example:
        >>> s = render_sod_sample(np.random.default_rng(1), size=32)
        >>> s.image.shape, s.mask.shape, s.background in SOD_BACKGROUNDS
        ((32, 32, 3), (32, 32), True)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ValueError(f"size must be an integer of at least 32 pixels, got {size!r}")
    background = SOD_BACKGROUNDS[int(rng.integers(len(SOD_BACKGROUNDS)))]
    image = _background(rng, background, size)
    # faint shapes of the background's own colour: texture, not salient objects
    for _ in range(int(rng.integers(0, 4))):
        cx, cy = rng.uniform(0, size, 2)
        kind = SOD_SHAPES[int(rng.integers(len(SOD_SHAPES)))]
        region = _fill(size, _outline(rng, kind, cx, cy, size * rng.uniform(0.04, 0.1)))
        image[region] += rng.normal(0, 7, 3).astype(np.float32)

    n = int(rng.integers(1, 4))
    mask = np.zeros((size, size), bool)
    shapes, parts = [], []
    for _ in range(n):
        kind = SOD_SHAPES[int(rng.integers(len(SOD_SHAPES)))]
        radius = size * rng.uniform(0.16, 0.4) / np.sqrt(n)
        cx, cy = rng.uniform(0.2 * size + radius / 2, 0.8 * size - radius / 2, 2)
        region = _fill(size, _outline(rng, kind, cx, cy, radius))
        if not region.any():  # pragma: no cover - the radii keep shapes several pixels wide
            continue
        attached = 0
        if rng.random() < _PART_PROB:  # drawn first, the object over them
            for part in _attached_parts(rng, size, cx, cy, radius):
                if not part.any():  # pragma: no cover - a limb or shape of at least 2 pixels
                    continue
                part_colour = _salient_colour(rng, image[part].mean(axis=0))
                part_texture = SOD_TEXTURES[int(rng.integers(len(SOD_TEXTURES)))]
                image[part] = _texture(rng, part_texture, part_colour, size, cx, cy)[part]
                mask |= part
                attached += 1
        under = image[region].mean(axis=0)
        colour = _salient_colour(rng, under)
        texture = SOD_TEXTURES[int(rng.integers(len(SOD_TEXTURES)))]
        image[region] = _texture(rng, texture, colour, size, cx, cy)[region]
        mask |= region
        shapes.append(kind)
        parts.append(attached)
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return SODSample(
        image=np.clip(image, 0, 255).round().astype(np.uint8),
        mask=mask,
        shapes=tuple(shapes),
        parts=tuple(parts),
        background=background,
    )


def make_synthetic_sod(
    root: str | os.PathLike,
    num_images: int = 300,
    size: int = 112,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, object]:
    """Write a synthetic salient-object data set under ``root``.

    Files that exist already are overwritten; the tree is the same for the same arguments.

    Args:
        root: Output folder.
        num_images: Number of images, at least 1; ids are ``sod_00000``, ``sod_00001``, ...
        size: Image side in pixels, at least 32.
        seed: Random seed; image ``i`` depends only on ``(seed, i)``.
        progress: Show a progress bar.

    Returns:
        The settings written to ``root/sod.json`` (with the folders and suffixes that
        :class:`seenet.data.sod.SalientObjectDataset` takes).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> info = make_synthetic_sod(root, num_images=2, size=32)
        >>> sorted(p.name for p in (root / "masks").iterdir())
        ['sod_00000.png', 'sod_00001.png']
        >>> info["image_dir"], info["mask_dir"], info["num_images"]
        ('images', 'masks', 2)
    """
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer, got {num_images!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ValueError(f"size must be an integer of at least 32 pixels, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    root = Path(root)
    ids = [f"sod_{i:05d}" for i in range(num_images)]
    jobs = list(enumerate(ids))
    iterator = jobs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(jobs, desc="synthetic saliency data", unit="img")
    for i, name in iterator:
        sample = render_sod_sample(np.random.default_rng([seed, _STREAM, i]), size)
        with atomic_write(root / "images" / f"{name}.jpg", "wb") as f:
            Image.fromarray(sample.image).save(f, format="JPEG", quality=95)
        with atomic_write(root / "masks" / f"{name}.png", "wb") as f:
            Image.fromarray(sample.mask.astype(np.uint8) * 255).save(f, format="PNG")
    info: dict[str, object] = {
        "generator": "seenet.data.synthetic_sod",
        "num_images": num_images,
        "size": size,
        "seed": seed,
        "image_dir": "images",
        "mask_dir": "masks",
        "image_suffix": ".jpg",
        "mask_suffix": ".png",
        "shapes": list(SOD_SHAPES),
        "textures": list(SOD_TEXTURES),
        "backgrounds": list(SOD_BACKGROUNDS),
    }
    with atomic_write(root / "sod.json", "w") as f:
        json.dump(info, f, indent=2)
    return info
