"""Overlays of attention maps and label maps on images, written as PNG.

Example:
    >>> import numpy as np
    >>> image = np.zeros((4, 6, 3), np.uint8)
    >>> heat = overlay_attention(image, np.linspace(0, 1, 24).reshape(4, 6))
    >>> heat.shape, heat.dtype
    ((4, 6, 3), dtype('uint8'))
    >>> overlay_labels(image, np.ones((4, 6), np.uint8), alpha=1.0)[0, 0].tolist()  # aeroplane
    [128, 0, 0]
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ._classes import voc_palette
from ._io import atomic_write
from ._validation import as_rgb_uint8, as_tensor

__all__ = ["jet", "overlay_attention", "overlay_labels", "tile", "save_png", "plot_curves"]

#: Line colours of :func:`plot_curves`, one per curve (cycled).
CURVE_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
                 (140, 86, 75), (227, 119, 194), (127, 127, 127))


def _as_map(x: np.ndarray | torch.Tensor, name: str, shape: tuple[int, int]) -> np.ndarray:
    x = as_tensor(x, name).detach().cpu().numpy()
    if x.shape != shape:
        raise ValueError(f"{name} must have the image's size {shape}, got {x.shape}")
    return x


def jet(values: np.ndarray) -> np.ndarray:
    """The jet colour map: values in [0, 1] to uint8 RGB (blue → cyan → yellow → red).

    Example:
        >>> jet(np.array([0.0, 1.0])).tolist()
        [[0, 0, 128], [128, 0, 0]]
    """
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return np.rint(np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def overlay_attention(
    image: np.ndarray | Image.Image | torch.Tensor,
    attention: np.ndarray | torch.Tensor,
    alpha: float = 0.5,
) -> np.ndarray:
    """Blend an attention map (H, W) in [0, 1], coloured with :func:`jet`, over an RGB image.

    Args:
        image: uint8 (H, W, 3).
        attention: (H, W) values in [0, 1] (a class attention map).
        alpha: Weight of the heat map.

    Returns:
        uint8 (H, W, 3).
    """
    img = as_rgb_uint8(image)
    att = _as_map(attention, "attention", img.shape[:2]).astype(np.float32)
    heat = jet(att).astype(np.float32)
    return np.rint((1 - alpha) * img + alpha * heat).clip(0, 255).astype(np.uint8)


def overlay_labels(
    image: np.ndarray | Image.Image | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    alpha: float = 0.6,
    ignore_index: int = 255,
) -> np.ndarray:
    """Blend a label map (H, W), coloured with the VOC palette, over an RGB image.

    Background (0) is left as the image; ``ignore_index`` pixels are drawn white.

    Returns:
        uint8 (H, W, 3).
    """
    img = as_rgb_uint8(image)
    lab = _as_map(labels, "labels", img.shape[:2]).astype(np.int64)
    colours = voc_palette()[np.clip(lab, 0, 255)].astype(np.float32)
    colours[lab == ignore_index] = 255.0
    out = img.astype(np.float32)
    fg = lab != 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    return np.rint(out).clip(0, 255).astype(np.uint8)


def tile(
    images: Sequence[np.ndarray], titles: Sequence[str] | None = None, pad: int = 4
) -> np.ndarray:
    """Place uint8 RGB images side by side (same height), with optional titles above.

    Example:
        >>> tile([np.zeros((4, 5, 3), np.uint8), np.zeros((4, 3, 3), np.uint8)]).shape
        (4, 12, 3)
    """
    if not images:
        raise ValueError("images must not be empty")
    h = images[0].shape[0]
    if any(im.shape[0] != h for im in images):
        raise ValueError("all images must have the same height")
    header = 12 if titles else 0
    w = sum(im.shape[1] for im in images) + pad * (len(images) - 1)
    canvas = np.full((h + header, w, 3), 255, np.uint8)
    x = 0
    for im in images:
        canvas[header:, x : x + im.shape[1]] = as_rgb_uint8(im)
        x += im.shape[1] + pad
    if titles:
        pil = Image.fromarray(canvas)
        draw = ImageDraw.Draw(pil)
        x = 0
        for im, title in zip(images, titles):
            draw.text((x + 1, 0), str(title), fill=(0, 0, 0))
            x += im.shape[1] + pad
        canvas = np.asarray(pil)
    return canvas


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 RGB array as PNG, atomically."""
    pil = Image.fromarray(as_rgb_uint8(image))
    with atomic_write(path, "wb") as f:
        pil.save(f, format="PNG")


def plot_curves(
    curves: dict[str, dict[float, float | None]],
    xlabel: str = "threshold t",
    ylabel: str = "mIoU (%)",
    title: str = "",
    size: tuple[int, int] = (560, 360),
    percent: bool = True,
) -> np.ndarray:
    """A line chart of one or more curves (e.g. mIoU along a threshold sweep), as an RGB image.

    Drawn with Pillow alone (no plotting library needed); each curve gets a colour and a legend
    entry with its best value. ``None`` values are left out.

    Args:
        curves: Name -> ``{x: y}``.
        xlabel: X-axis label.
        ylabel: Y-axis label.
        title: Title above the chart.
        size: ``(width, height)`` in pixels.
        percent: Show y values (fractions) in percent.

    Returns:
        uint8 ``(height, width, 3)``; write it with :func:`save_png`.

    Example:
        >>> plot_curves({"CAM": {0.1: 0.3, 0.5: 0.45}, "SeeNet": {0.1: 0.35, 0.5: 0.5}}).shape
        (360, 560, 3)
    """
    if not curves:
        raise ValueError("curves must not be empty")
    width, height = size
    left, right, top, bottom = 56, 16, 28 if title else 12, 40
    pil = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(pil)
    points = [(float(x), float(y)) for c in curves.values() for x, y in c.items() if y is not None]
    if not points:
        raise ValueError("curves hold no values")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.05 if max(ys) > 0 else 1.0
    scale = 100.0 if percent else 1.0

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return px, py

    draw.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        _, py = to_px(x0, y)
        draw.line([left - 4, py, left, py], fill=(0, 0, 0))
        draw.text((4, py - 6), f"{y * scale:.3g}", fill=(0, 0, 0))
    for x in sorted(set(xs))[:: max(1, len(set(xs)) // 8)]:
        px, _ = to_px(x, y0)
        draw.line([px, height - bottom, px, height - bottom + 4], fill=(0, 0, 0))
        draw.text((px - 10, height - bottom + 6), f"{x:g}", fill=(0, 0, 0))
    draw.text((left, height - 14), xlabel, fill=(0, 0, 0))
    draw.text((4, top - 14 if title else 0), ylabel if not title else title, fill=(0, 0, 0))
    for i, (name, curve) in enumerate(curves.items()):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        pts = [to_px(float(x), float(y)) for x, y in sorted(curve.items()) if y is not None]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        for px, py in pts:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        best = max((y for y in curve.values() if y is not None), default=None)
        label = name if best is None else f"{name} (best {best * scale:.1f})"
        draw.text((width - right - 170, top + 6 + 14 * i), label, fill=colour)
    return np.asarray(pil)
