"""PASCAL VOC class names and colour palette, shared by data, metrics and visualisation."""

from __future__ import annotations

import numpy as np

__all__ = ["VOC_CLASSES", "VOC_FOREGROUND", "voc_palette"]

#: The 21 VOC labels; id 0 is background, id ``c + 1`` is foreground class index ``c``.
VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

#: The 20 foreground classes, in the order of the image-level label vector.
VOC_FOREGROUND: tuple[str, ...] = VOC_CLASSES[1:]


def voc_palette(num_colors: int = 256) -> np.ndarray:
    """The standard VOC colour map (bit-interleaved), as a ``(num_colors, 3)`` uint8 array.

    Index 255, the ignore label, comes out as ``(224, 224, 192)``, as in VOC's own PNG files.

    Example:
        >>> voc_palette()[:3].tolist()
        [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
        >>> voc_palette()[255].tolist()
        [224, 224, 192]
    """
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for i in range(num_colors):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette
