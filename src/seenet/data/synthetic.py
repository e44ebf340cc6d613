"""Synthetic PASCAL-VOC-format data with the two properties the SeeNet paper is about.

Every image holds one to three objects of a few classes on a textured background. The data is
built so that a weakly supervised attention method has the same problems on it as on real photos:

* **Integral objects need more than the most discriminative part.** Each object is a large
  *body* whose look (colour, stripe texture) is drawn from one distribution shared by all
  classes, plus a small class-specific *part* in a colour of its own (a red tail fin on the
  aeroplane, a yellow flag on the boat, a magenta nose on the car, a blue cab on the train). The
  part alone identifies the class, so a classifier's class activation map (CAM) concentrates on
  it; the body's outline differs between classes only in its shape, a weaker cue that an
  attention network finds once the part is hidden. Plain uniformly coloured shapes would not
  show this: CAM already covers them.
* **Each class has its own background context** (as trains with rails): aeroplanes usually fly
  in sky, boats float on water, cars stand on roads, trains run on rails. With probability
  ``context_prob`` the background is the context of the image's first object, otherwise it is
  drawn uniformly from all contexts. The context is a real but imperfect cue, so an attention
  method that spreads into the background finds class evidence there and is penalised by the
  masks.

The files follow the VOC2012 layout with the SBD augmentation that the real recipes read::

    root/
      JPEGImages/<id>.jpg               RGB images (JPEG quality 95)
      SegmentationClass/<id>.png        palette PNGs (VOC colour map), 0 background, c+1 class c
      SegmentationClassAug/<id>.png     the same labels, as SBD's converted masks are
      ImageSets/Segmentation/train.txt  the first ``train_fraction`` of the training images
      ImageSets/Segmentation/train_aug.txt   all training images
      ImageSets/Segmentation/val.txt    validation images
      ImageSets/Segmentation/trainval.txt
      synthetic.json                    the generator's settings and the classes it used

Classes keep their VOC ids (aeroplane 1, boat 4, car 7, train 19), so the tree is a 21-label VOC
tree in which only these classes occur. Generation is deterministic: image ``i`` of a split
depends only on ``(seed, split, i)``.

Example:
    >>> import numpy as np
    >>> sample = render_sample(np.random.default_rng(0), size=64)
    >>> sample.image.shape, sample.image.dtype, sample.mask.shape
    ((64, 64, 3), dtype('uint8'), (64, 64))
    >>> set(np.unique(sample.mask).tolist()) <= {0, 1, 4, 7, 19}
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .._classes import VOC_CLASSES, voc_palette
from .._io import atomic_write

__all__ = [
    "SYNTHETIC_CLASSES",
    "CONTEXTS",
    "SyntheticObject",
    "SyntheticSample",
    "render_sample",
    "make_synthetic_voc",
    "read_synthetic_info",
]

#: Classes the generator draws, as VOC class names, and the background context each one prefers.
SYNTHETIC_CLASSES: tuple[str, ...] = ("aeroplane", "boat", "car", "train")

#: Background contexts, one per class in :data:`SYNTHETIC_CLASSES` order.
CONTEXTS: tuple[str, ...] = ("sky", "water", "road", "rails")

# colours of the class-specific parts: distinct hues, unlike anything else in the images, but of
# moderate chroma, so that a colour-contrast saliency (which stretches its map to the most salient
# pixel) does not rate the parts far above the bodies
_PART_COLOURS = {
    "aeroplane": (205, 75, 70),
    "boat": (215, 195, 70),
    "car": (190, 85, 190),
    "train": (80, 100, 210),
}
# the shared body palette: pale, warm and neutral tones, the same for every class
_BODY_COLOURS = np.array(
    [
        (236, 226, 200),
        (222, 196, 160),
        (240, 240, 236),
        (214, 180, 150),
        (226, 214, 228),
        (206, 206, 190),
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class SyntheticObject:
    """One object of a :class:`SyntheticSample`.

    Attributes:
        name: Class name (one of :data:`SYNTHETIC_CLASSES`).
        body: Boolean ``(H, W)`` mask of the body (shared look) as visible in the image.
        part: Boolean ``(H, W)`` mask of the class-specific part as visible in the image.
    """

    name: str
    body: np.ndarray = field(repr=False)
    part: np.ndarray = field(repr=False)

    @property
    def voc_id(self) -> int:
        """The VOC label id of the object's class."""
        return VOC_CLASSES.index(self.name)


@dataclass(frozen=True)
class SyntheticSample:
    """One generated image with its labels.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB image.
        mask: ``(H, W)`` uint8 VOC label map (0 background, VOC id per object pixel).
        context: The background context (one of :data:`CONTEXTS`).
        objects: The objects, in drawing order (later ones occlude earlier ones).
    """

    image: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    context: str
    objects: tuple[SyntheticObject, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names present in the image, sorted by VOC id."""
        ids = sorted({o.voc_id for o in self.objects if (o.body | o.part).any()})
        return tuple(VOC_CLASSES[i] for i in ids)


# ----------------------------------------------------------------------------- textures


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a ``cells``×``cells`` random grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32)


def _context_texture(rng: np.random.Generator, context: str, size: int) -> np.ndarray:
    """A full-image background texture, float32 ``(size, size, 3)`` in [0, 255]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if context == "sky":
        top = np.array([95, 150, 215], np.float32) + rng.normal(0, 8, 3)
        bottom = np.array([175, 205, 235], np.float32) + rng.normal(0, 8, 3)
        img = top * (1 - yy[..., None]) + bottom * yy[..., None]
        clouds = np.clip(_smooth_noise(rng, size, 4) * 2.2 - 1.3, 0, 1)[..., None]
        img = img * (1 - 0.6 * clouds) + 245 * 0.6 * clouds
    elif context == "water":
        base = np.array([40, 95, 130], np.float32) + rng.normal(0, 8, 3)
        period = rng.uniform(0.05, 0.09)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (yy + 0.02 * np.sin(2 * np.pi * xx * 3 + phase)) / period)
        img = base + 28 * wave[..., None] * np.array([0.6, 0.9, 1.0], np.float32)
    elif context == "road":
        base = rng.uniform(70, 95)
        img = np.full((size, size, 3), base, np.float32)
        img += rng.normal(0, 9, (size, size, 1)).astype(np.float32)
        lane_period = rng.uniform(0.3, 0.45)
        lane_y = rng.uniform(0, lane_period)
        dash = (np.mod(xx + rng.uniform(0, 1), 0.16) < 0.09).astype(np.float32)
        band = (np.mod(yy - lane_y, lane_period) < 0.03).astype(np.float32)
        img = img * (1 - band * dash)[..., None] + 235 * (band * dash)[..., None]
    elif context == "rails":
        ground = np.array([120, 105, 85], np.float32) + rng.normal(0, 8, 3)
        img = ground + rng.normal(0, 14, (size, size, 1)).astype(np.float32)
        track_period = rng.uniform(0.28, 0.4)
        offset = rng.uniform(0, track_period)
        gauge = 0.09
        pos = np.mod(yy - offset, track_period)
        sleepers = (pos < gauge + 0.02) & (np.mod(xx + rng.uniform(0, 1), 0.07) < 0.025)
        rails = (np.abs(pos - 0.01) < 0.008) | (np.abs(pos - 0.01 - gauge) < 0.008)
        img[sleepers] = (90, 60, 40)
        img[rails] = (60, 60, 66)
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    img += rng.normal(0, 4, (size, size, 3)).astype(np.float32)
    return img


def _body_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """The look every class shares: a pale colour with fine diagonal stripes."""
    colour = _BODY_COLOURS[rng.integers(len(_BODY_COLOURS))] + rng.normal(0, 6, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(4.0, 7.0)
    stripes = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    img = colour + rng.uniform(10, 16) * stripes[..., None] * np.array([1.0, 0.95, 0.9])
    return img.astype(np.float32)


def _part_texture(rng: np.random.Generator, name: str, size: int) -> np.ndarray:
    """The class-specific look: a saturated colour of the class with a light dot pattern."""
    colour = np.array(_PART_COLOURS[name], np.float32) + rng.normal(0, 6, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dots = ((np.mod(xx, 4) < 1.5) & (np.mod(yy, 4) < 1.5)).astype(np.float32)
    return colour * (1 - 0.25 * dots[..., None]) + 255 * 0.25 * dots[..., None]


# ----------------------------------------------------------------------------- shapes


def _polygon_mask(size: int, polygons: Sequence[Sequence[tuple[float, float]]], ellipses=()):
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        draw.polygon([(float(x), float(y)) for x, y in poly], fill=1)
    for box in ellipses:
        draw.ellipse([float(v) for v in box], fill=1)
    return np.asarray(canvas, dtype=bool)


def _object_masks(
    rng: np.random.Generator, name: str, size: int, cx: float, cy: float, length: float, facing: int
) -> tuple[np.ndarray, np.ndarray]:
    """Body and part masks of one object centred at ``(cx, cy)`` with body length ``length``.

    ``facing`` is +1 (part on the right end) or -1 (left end). Bodies are all long horizontal
    shapes of the shared look; their outlines differ between classes.
    """
    half = length / 2
    f = facing

    def x(u: float) -> float:  # u in [-1, 1] along the body, +1 at the facing end
        return cx + f * u * half

    if name == "aeroplane":
        h = length * rng.uniform(0.13, 0.17)
        body = _polygon_mask(
            size,
            [
                # swept wings across the fuselage
                [(x(0.15), cy), (x(-0.25), cy - 0.9 * length * 0.5), (x(-0.42), cy - 0.9 * length
                 * 0.5), (x(-0.15), cy), (x(-0.42), cy + 0.9 * length * 0.5),
                 (x(-0.25), cy + 0.9 * length * 0.5)],
            ],
            ellipses=[(cx - half, cy - h / 2, cx + half, cy + h / 2)],
        )
        # tail fin at the rear end, above the fuselage
        part = _polygon_mask(
            size,
            [[(x(-1.0), cy - h * 0.2), (x(-1.02), cy - h * 1.9), (x(-0.8), cy - h * 1.9),
              (x(-0.62), cy - h * 0.2)]],
        )
    elif name == "boat":
        h = length * rng.uniform(0.28, 0.34)
        top, bottom = cy - h * 0.2, cy + h * 0.6
        body = _polygon_mask(
            size,
            [
                [(x(-1.0), top), (x(1.0), top), (x(0.72), bottom), (x(-0.8), bottom)],
                # cabin
                [(x(-0.45), top), (x(-0.45), top - h * 0.45), (x(0.15), top - h * 0.45),
                 (x(0.3), top)],
            ],
        )
        # flag on the bow
        mast_x = x(0.62)
        part = _polygon_mask(
            size,
            [[(mast_x, top), (mast_x, top - h * 1.15), (mast_x + f * length * 0.2, top - h * 0.9),
              (mast_x + f * 0.02 * length, top - h * 0.6), (mast_x + f * 0.02 * length, top)]],
        )
    elif name == "car":
        h = length * rng.uniform(0.3, 0.36)
        r = h * 0.28
        body = _polygon_mask(
            size,
            [
                [(x(-1.0), cy - h * 0.15), (x(0.78), cy - h * 0.15), (x(0.78), cy + h * 0.35),
                 (x(-1.0), cy + h * 0.35)],
                # cabin
                [(x(-0.7), cy - h * 0.15), (x(-0.45), cy - h * 0.65), (x(0.25), cy - h * 0.65),
                 (x(0.5), cy - h * 0.15)],
            ],
            ellipses=[
                (x(-0.6) - r, cy + h * 0.35 - r, x(-0.6) + r, cy + h * 0.35 + r),
                (x(0.5) - r, cy + h * 0.35 - r, x(0.5) + r, cy + h * 0.35 + r),
            ],
        )
        # bonnet / nose with the lights
        part = _polygon_mask(
            size,
            [[(x(0.78), cy - h * 0.15), (x(1.0), cy - h * 0.02), (x(1.0), cy + h * 0.35),
              (x(0.78), cy + h * 0.35)]],
        )
    elif name == "train":
        h = length * rng.uniform(0.24, 0.3)
        body = _polygon_mask(
            size,
            [
                [(x(-1.0), cy - h * 0.5), (x(0.76), cy - h * 0.5), (x(0.76), cy + h * 0.5),
                 (x(-1.0), cy + h * 0.5)],
                # coupling gaps: notches on the top edge make the carriages
                [(x(-0.3), cy - h * 0.5), (x(-0.3), cy - h * 0.62), (x(0.2), cy - h * 0.62),
                 (x(0.2), cy - h * 0.5)],
            ],
        )
        # the cab at the front
        part = _polygon_mask(
            size,
            [[(x(0.76), cy - h * 0.5), (x(0.9), cy - h * 0.5), (x(1.0), cy - h * 0.1),
              (x(1.0), cy + h * 0.5), (x(0.76), cy + h * 0.5)]],
        )
    else:
        raise ValueError(f"name must be one of {SYNTHETIC_CLASSES}, got {name!r}")
    return body & ~part, part


def render_sample(
    rng: np.random.Generator,
    size: int = 128,
    classes: Sequence[str] = SYNTHETIC_CLASSES,
    max_objects: int = 3,
    context_prob: float = 0.8,
) -> SyntheticSample:
    """Draw one synthetic image with its exact label map.

    Args:
        rng: The random generator (the only source of randomness).
        size: Image side in pixels (square images), at least 32.
        classes: Classes to draw from (subset of :data:`SYNTHETIC_CLASSES`).
        max_objects: Up to this many objects (at least one), classes drawn independently.
        context_prob: Probability that the background is the first object's own context; else
            the context is drawn uniformly from all contexts. The objects do not depend on it:
            the same generator state gives the same objects and label map for every value, so
            data sets that differ only in ``context_prob`` differ only in their backgrounds.

    Returns:
        The :class:`SyntheticSample`.

    Example:
        >>> import numpy as np
        >>> s = render_sample(np.random.default_rng(3), size=48, max_objects=1)
        >>> len(s.objects), int(s.mask.max()) == s.objects[0].voc_id
        (1, True)
    """
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    if max_objects < 1:
        raise ValueError(f"max_objects must be at least 1, got {max_objects}")
    if not 0.0 <= context_prob <= 1.0:
        raise ValueError(f"context_prob must be in [0, 1], got {context_prob}")
    unknown = [c for c in classes if c not in SYNTHETIC_CLASSES]
    if unknown or not classes:
        raise ValueError(
            f"classes must be a non-empty subset of {SYNTHETIC_CLASSES}, got {tuple(classes)}"
        )

    n = int(rng.integers(1, max_objects + 1))
    names = [classes[int(rng.integers(len(classes)))] for _ in range(n)]
    # the background takes a fixed number of draws from ``rng`` whatever its context, so that
    # the same generator gives the same objects for every ``context_prob``
    own_context = rng.random() < context_prob
    other_context = CONTEXTS[int(rng.integers(len(CONTEXTS)))]
    background_rng = np.random.default_rng(int(rng.integers(2**63)))
    context = CONTEXTS[SYNTHETIC_CLASSES.index(names[0])] if own_context else other_context
    image = _context_texture(background_rng, context, size)
    mask = np.zeros((size, size), np.uint8)

    # larger objects when alone; placement keeps most of each object inside the image
    scale = {1: (0.55, 0.8), 2: (0.42, 0.58), 3: (0.36, 0.48)}.get(n, (0.3, 0.4))
    drawn: list[tuple[str, np.ndarray, np.ndarray]] = []
    occupied = np.zeros((size, size), bool)
    for name in names:
        best = None
        for _ in range(12):  # rejection sampling for small overlaps
            length = rng.uniform(*scale) * size
            cx = rng.uniform(0.5 * length, size - 0.5 * length)
            cy = rng.uniform(0.25 * size, 0.75 * size) if n == 1 else rng.uniform(0.2, 0.8) * size
            facing = 1 if rng.random() < 0.5 else -1
            body, part = _object_masks(rng, name, size, cx, cy, length, facing)
            area = (body | part).sum()
            overlap = ((body | part) & occupied).sum() / max(area, 1)
            if best is None or overlap < best[0]:
                best = (overlap, body, part)
            if overlap < 0.1:
                break
        assert best is not None
        _, body, part = best
        obj = body | part
        image[body] = _body_texture(rng, size)[body]
        image[part] = _part_texture(rng, name, size)[part]
        mask[obj] = VOC_CLASSES.index(name)
        # earlier objects lose the pixels the new one covers
        drawn = [(nm, b & ~obj, p & ~obj) for nm, b, p in drawn]
        drawn.append((name, body, part))
        occupied |= obj

    image += rng.normal(0, 3, image.shape).astype(np.float32)
    objects = tuple(SyntheticObject(nm, b, p) for nm, b, p in drawn)
    return SyntheticSample(
        image=np.clip(image, 0, 255).round().astype(np.uint8),
        mask=mask,
        context=context,
        objects=objects,
    )


# ----------------------------------------------------------------------------- the VOC tree


def _write_png_labels(mask: np.ndarray, path: Path, palette: bytes) -> None:
    img = Image.fromarray(mask, mode="P")
    img.putpalette(palette)
    with atomic_write(path, "wb") as f:
        img.save(f, format="PNG")


def _write_list(path: Path, ids: Sequence[str]) -> None:
    with atomic_write(path, "w") as f:
        f.write("".join(f"{i}\n" for i in ids))


def make_synthetic_voc(
    root: str | os.PathLike,
    num_train: int = 600,
    num_val: int = 150,
    size: int = 128,
    seed: int = 0,
    classes: Sequence[str] = SYNTHETIC_CLASSES,
    max_objects: int = 3,
    context_prob: float = 0.8,
    train_fraction: float = 0.5,
    progress: bool = False,
) -> dict[str, object]:
    """Write a synthetic data set in the VOC2012 + SBD layout under ``root``.

    Files that exist already are overwritten; the tree is the same for the same arguments.

    Args:
        root: Output folder (the one that holds ``JPEGImages``).
        num_train: Training images (listed in ``train_aug.txt``), at least 1.
        num_val: Validation images (``val.txt``), at least 1.
        size: Image side in pixels.
        seed: Random seed; image ``i`` of a split depends only on ``(seed, split, i)``.
        classes: Classes to draw from (subset of :data:`SYNTHETIC_CLASSES`).
        max_objects: Up to this many objects per image.
        context_prob: Probability that the background is the first object's own context.
        train_fraction: Fraction of the training images also listed in ``train.txt``.
        progress: Show a progress bar.

    Returns:
        The settings written to ``root/synthetic.json`` (with the ``classes`` and their VOC ids).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> info = make_synthetic_voc(root, num_train=2, num_val=1, size=32)
        >>> sorted(p.name for p in (root / "ImageSets" / "Segmentation").iterdir())
        ['train.txt', 'train_aug.txt', 'trainval.txt', 'val.txt']
        >>> info["class_ids"]
        [1, 4, 7, 19]
    """
    for value, name in ((num_train, "num_train"), (num_val, "num_val")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    # check the drawing arguments once, before writing anything
    render_sample(np.random.default_rng(0), size, classes, max_objects, context_prob)

    root = Path(root)
    palette = voc_palette().tobytes()
    splits = {"train": [f"syn_train_{i:05d}" for i in range(num_train)]}
    splits["val"] = [f"syn_val_{i:05d}" for i in range(num_val)]
    jobs = [("train", i, name) for i, name in enumerate(splits["train"])]
    jobs += [("val", i, name) for i, name in enumerate(splits["val"])]
    iterator = jobs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(jobs, desc="synthetic data", unit="img")
    split_code = {"train": 0, "val": 1}
    for split, i, name in iterator:
        rng = np.random.default_rng([seed, split_code[split], i])
        sample = render_sample(rng, size, classes, max_objects, context_prob)
        with atomic_write(root / "JPEGImages" / f"{name}.jpg", "wb") as f:
            Image.fromarray(sample.image).save(f, format="JPEG", quality=95)
        _write_png_labels(sample.mask, root / "SegmentationClass" / f"{name}.png", palette)
        _write_png_labels(sample.mask, root / "SegmentationClassAug" / f"{name}.png", palette)

    lists = root / "ImageSets" / "Segmentation"
    n_train = max(1, int(round(train_fraction * num_train)))
    _write_list(lists / "train.txt", splits["train"][:n_train])
    _write_list(lists / "train_aug.txt", splits["train"])
    _write_list(lists / "val.txt", splits["val"])
    _write_list(lists / "trainval.txt", splits["train"][:n_train] + splits["val"])
    info: dict[str, object] = {
        "generator": "seenet.data.synthetic",
        "num_train": num_train,
        "num_val": num_val,
        "size": size,
        "seed": seed,
        "classes": list(classes),
        "class_ids": [VOC_CLASSES.index(c) for c in classes],
        "contexts": {c: CONTEXTS[SYNTHETIC_CLASSES.index(c)] for c in classes},
        "max_objects": max_objects,
        "context_prob": context_prob,
        "train_fraction": train_fraction,
    }
    with atomic_write(root / "synthetic.json", "w") as f:
        json.dump(info, f, indent=2)
    return info


def read_synthetic_info(root: str | os.PathLike) -> dict[str, object]:
    """Read the ``synthetic.json`` that :func:`make_synthetic_voc` wrote under ``root``.

    Raises:
        FileNotFoundError: If ``root`` holds no generated tree.
    """
    path = Path(root) / "synthetic.json"
    if not path.is_file():
        raise FileNotFoundError(f"no synthetic data set here (missing {path})")
    return json.loads(path.read_text())
