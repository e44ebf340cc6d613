"""Saliency maps, the background prior of the proxy ground truth.

The paper takes its saliency maps from a salient-object detector (DSS, Hou et al., CVPR 2017).
Such detectors write one 8-bit grey PNG per image, named like the image; :class:`SaliencyFolder`
and :func:`read_saliency` read them, normalised to [0, 1] and resized to the image.

When no detector output exists, :func:`frequency_tuned_saliency` computes the classical
frequency-tuned saliency of Achanta et al. (CVPR 2009) from the image alone. It is a much weaker
prior than a trained detector (it marks colour contrast, not objects) and proxy ground truth built
on it is correspondingly worse; it is meant for demos, tests and quick experiments, not to
reproduce the paper's numbers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image

from ._io import atomic_write, read_image_file
from ._validation import check_choice

__all__ = [
    "read_saliency",
    "save_saliency",
    "SaliencyFolder",
    "frequency_tuned_saliency",
    "rgb_to_lab",
]

Size = Union[tuple[int, int], None]


def _check_size(size: object) -> tuple[int, int] | None:
    if size is None:
        return None
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be None or (H, W) with two positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _to_unit(img: Image.Image) -> np.ndarray:
    """An image's grey values as float32 in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img, dtype=np.float32) / 65535.0
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.float32)
        return arr / 65535.0 if arr.max(initial=0) > 255 else arr / 255.0
    if img.mode == "F":
        raise ValueError("floating-point images are not saliency PNGs (mode 'F')")
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img, dtype=np.float32) / 255.0


def read_saliency(
    path: str | os.PathLike, size: Size = None, normalize: str = "fixed"
) -> torch.Tensor:
    """Read a saliency map from an image file (8-bit grey PNG, as detectors write).

    Args:
        path: The image file. Grey 8-bit (and 16-bit) images are read as they are; colour images
            are converted to grey first.
        size: Optional ``(H, W)`` to resize to (bilinear), usually the image's size.
        normalize: ``"fixed"`` divides by the format's maximum (255 for 8-bit), keeping a map
            that is faint everywhere faint; ``"minmax"`` stretches each map to span [0, 1].

    Returns:
        float32 ``(H, W)`` in [0, 1].

    Raises:
        FileNotFoundError: If ``path`` does not exist (the message names it).
        ValueError: If the file cannot be read as an image (the message names it).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
        >>> save_saliency(p, torch.tensor([[0.0, 1.0], [0.5, 0.25]]))
        >>> read_saliency(p)
        tensor([[0.0000, 1.0000],
                [0.5020, 0.2510]])
        >>> read_saliency(p, size=(4, 4)).shape
        torch.Size([4, 4])
    """
    size = _check_size(size)
    check_choice(normalize, "normalize", ("fixed", "minmax"))
    arr = read_image_file(path, "saliency map", _to_unit)
    if normalize == "minmax":
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if size is not None and arr.shape != size:
        resized = Image.fromarray(arr, mode="F").resize((size[1], size[0]), Image.BILINEAR)
        arr = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def save_saliency(path: str | os.PathLike, saliency: torch.Tensor | np.ndarray) -> None:
    """Write a saliency map in [0, 1] as an 8-bit grey PNG (``round(255 * D)``), atomically.

    Args:
        path: Destination ``.png``.
        saliency: ``(H, W)`` values in [0, 1].

    Raises:
        ValueError: If the map is not 2-D or holds NaN or values outside [0, 1].
    """
    arr = saliency.detach().cpu().numpy() if isinstance(saliency, torch.Tensor) else saliency
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"saliency must have shape (H, W), got {arr.shape}")
    if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1):
        raise ValueError("saliency must be finite and in [0, 1]")
    img = Image.fromarray(np.rint(arr * 255).astype(np.uint8), mode="L")
    with atomic_write(path, "wb") as f:
        img.save(f, format="PNG")


class SaliencyFolder:
    """A folder of saliency PNGs named like the images (``2007_000032.jpg`` → ``2007_000032.png``).

    Args:
        root: The folder.
        suffix: File ending of the saliency maps.
        normalize: As in :func:`read_saliency`.

    Example:
        >>> import tempfile
        >>> folder = SaliencyFolder(tempfile.mkdtemp())
        >>> save_saliency(folder.path("2007_000032.jpg"), torch.ones(3, 4))
        >>> folder.load("2007_000032.jpg", size=(6, 8)).shape
        torch.Size([6, 8])
        >>> folder.path("2007_000032").name
        '2007_000032.png'
    """

    def __init__(
        self, root: str | os.PathLike, suffix: str = ".png", normalize: str = "fixed"
    ) -> None:
        self.root = Path(root)
        self.suffix = suffix
        self.normalize = check_choice(normalize, "normalize", ("fixed", "minmax"))

    def path(self, image: str | os.PathLike) -> Path:
        """The saliency file for an image name, id or path (its stem plus :attr:`suffix`)."""
        name = Path(image).name
        stem = Path(name).stem if Path(name).suffix.lower() in _IMAGE_SUFFIXES else name
        return self.root / f"{stem}{self.suffix}"

    def load(self, image: str | os.PathLike, size: Size = None) -> torch.Tensor:
        """Read the saliency map of ``image``, normalised to [0, 1] and resized to ``size``.

        Raises:
            FileNotFoundError: If the map is missing; the message names the file and folder.
            ValueError: If it cannot be read; the message names the file.
        """
        path = self.path(image)
        if not path.is_file():
            raise FileNotFoundError(
                f"no saliency map for image {str(image)!r}: expected {path} in {self.root} "
                "(saliency maps must be grey PNGs named like the images)"
            )
        return read_saliency(path, size=size, normalize=self.normalize)

    __call__ = load

    def __repr__(self) -> str:
        return f"SaliencyFolder({str(self.root)!r}, suffix={self.suffix!r})"


_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}

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


def _as_rgb_uint8(image: object) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"image must be a uint8 array of shape (H, W, 3) or a PIL image, got {arr.dtype} "
            f"{arr.shape}"
        )
    return arr


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
    rgb = _as_rgb_uint8(image).astype(np.float64) / 255.0
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
