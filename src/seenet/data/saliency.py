"""Saliency maps on disk: 8-bit grey PNGs named like the images, as saliency detectors write.

:class:`SaliencyFolder` and :func:`read_saliency` read them, normalised to [0, 1] and resized to
the image; :func:`save_saliency` writes one. The maps are the background prior of the proxy ground
truth (:mod:`seenet.proxy`); :mod:`seenet.saliency` computes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image

from .._io import atomic_write, read_image_file
from .._validation import check_choice, check_size

__all__ = ["read_saliency", "save_saliency", "SaliencyFolder"]

Size = Union[tuple[int, int], None]


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
    size = check_size(size)
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
