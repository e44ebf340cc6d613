"""Saliency maps, the background prior of the proxy ground truth.

The paper takes its saliency maps from a salient-object detector (DSS, Hou et al., CVPR 2017).
Such detectors write one 8-bit grey PNG per image, named like the image;
:class:`seenet.data.saliency.SaliencyFolder` reads them (re-exported here).

When no detector output exists, :func:`frequency_tuned_saliency` computes the classical
frequency-tuned saliency of Achanta et al. (CVPR 2009) from the image alone. It is a much weaker
prior than a trained detector (it marks colour contrast, not objects) and proxy ground truth built
on it is correspondingly worse; it is meant for demos, tests and quick experiments, not to
reproduce the paper's numbers.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ._validation import as_rgb_uint8
from .data.saliency import SaliencyFolder, read_saliency, save_saliency

__all__ = [
    "read_saliency",
    "save_saliency",
    "SaliencyFolder",
    "frequency_tuned_saliency",
    "rgb_to_lab",
]

# sRGB (D65) -> XYZ, and the D65 white point (2° observer)
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)


def rgb_to_lab(image: np.ndarray | Image.Image) -> np.ndarray:
    """Convert 8-bit sRGB to CIE L*a*b* (D65), as float32.

    Args:
        image: uint8 ``(H, W, 3)`` RGB array or a PIL image.

    Returns:
        float32 ``(H, W, 3)``: L in [0, 100], a and b roughly in [-128, 127].

    Example:
        >>> lab = rgb_to_lab(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8))
        >>> lab[..., 0].round(2).tolist(), bool(np.abs(lab[..., 1:]).max() < 0.01)
        ([[100.0, 0.0]], True)
    """
    rgb = as_rgb_uint8(image).astype(np.float64) / 255.0
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = lin @ _RGB_TO_XYZ.T / _WHITE_D65
    eps = (6.0 / 29.0) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab.astype(np.float32)


def _binomial_blur(x: np.ndarray) -> np.ndarray:
    """5×5 separable binomial blur (1 4 6 4 1)/16 with reflected borders, over axes 0 and 1."""
    k = (1.0, 4.0, 6.0, 4.0, 1.0)
    for axis in (0, 1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (2, 2)
        p = np.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        out = np.zeros_like(x)
        for i, wgt in enumerate(k):
            out += wgt * np.take(p, np.arange(i, i + n), axis=axis)
        x = out / 16.0
    return x


def frequency_tuned_saliency(image: np.ndarray | Image.Image) -> torch.Tensor:
    """Frequency-tuned saliency (Achanta et al., CVPR 2009): a weak, training-free fallback.

    ``S(x) = || mean_Lab - blur_Lab(x) ||``: the distance in CIE L*a*b* between each pixel of
    the slightly blurred image (5×5 binomial kernel) and the image's mean colour, then stretched
    to [0, 1] (min-max). It favours regions whose colour differs from the image's average; it
    knows nothing of objects, so it is far weaker than the detector saliency (DSS) the paper uses.

    Args:
        image: uint8 ``(H, W, 3)`` RGB array or a PIL image.

    Returns:
        float32 ``(H, W)`` in [0, 1].

    Example:
        >>> img = np.full((20, 20, 3), 128, np.uint8)
        >>> img[5:10, 5:10] = (255, 0, 0)  # a red square on grey
        >>> s = frequency_tuned_saliency(img)
        >>> bool(s[7, 7] > 0.9), bool(s[0, 0] < 0.1)
        (True, True)
    """
    lab = rgb_to_lab(image).astype(np.float32)
    mean = lab.reshape(-1, 3).mean(axis=0)
    blurred = _binomial_blur(lab) if min(lab.shape[:2]) >= 3 else lab
    s = np.sqrt(((blurred - mean) ** 2).sum(axis=-1))
    lo, hi = (float(s.min()), float(s.max())) if s.size else (0.0, 0.0)
    s = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    return torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))
