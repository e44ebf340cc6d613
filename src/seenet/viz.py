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

__all__ = ["jet", "overlay_attention", "overlay_labels", "tile", "save_png"]


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
