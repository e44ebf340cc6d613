"""Stored class attention maps: one ``.npz`` file per image.

A stored-maps file holds two arrays: ``classes`` (int64, the class indices, background not
counted) and ``maps`` (uint8, ``round(255 * map)``, one map per entry of ``classes``). The
attention-map stage writes them; proxy ground truth and the attention scores read them.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np
import torch

from .._io import atomic_write
from .._validation import as_tensor, check_unit_range

__all__ = ["save_maps", "load_maps", "dense_maps"]

ArrayLike = Union[torch.Tensor, np.ndarray]



def save_maps(path: str | os.PathLike, classes: ArrayLike, maps: ArrayLike) -> None:
    """Store class attention maps as an ``.npz`` file, atomically.

    The file holds ``classes`` (int64, class indices without background) and ``maps`` (uint8,
    ``round(255 * map)``), compressed.

    Args:
        path: Destination file (``.npz``); parent folders are created.
        classes: Class indices, ``(L,)``, distinct and non-negative.
        maps: The maps of those classes, ``(L, H, W)``: floating point in [0, 1], or uint8 taken
            as already quantised.

    Raises:
        ValueError: On mismatched shapes, repeated or negative classes, NaN or values outside
            [0, 1].

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "img.npz"
        >>> save_maps(p, [3], torch.tensor([[[0.0, 0.5, 1.0]]]))
        >>> classes, maps = load_maps(p)
        >>> classes.tolist(), (maps * 255).round().tolist()
        ([3], [[[0.0, 128.0, 255.0]]])
    """
    cls = np.asarray(classes.cpu() if isinstance(classes, torch.Tensor) else classes)
    if cls.ndim != 1 or (cls.size and not np.issubdtype(cls.dtype, np.integer)):
        raise ValueError(f"classes must be a 1-D array of ints, got {cls.dtype} {cls.shape}")
    cls = cls.astype(np.int64)
    if (cls < 0).any() or len(np.unique(cls)) != len(cls):
        raise ValueError(f"classes must be distinct non-negative ints, got {cls.tolist()}")
    if isinstance(maps, torch.Tensor):
        maps = maps.detach().cpu().numpy()
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] != len(cls):
        raise ValueError(
            f"maps must have shape (L, H, W) with L = len(classes) = {len(cls)}, got {maps.shape}"
        )
    if maps.dtype == np.uint8:
        q = maps
    elif np.issubdtype(maps.dtype, np.floating):
        check_unit_range(torch.from_numpy(np.ascontiguousarray(maps)), "maps")
        q = np.rint(maps.astype(np.float32) * 255.0).astype(np.uint8)
    else:
        raise ValueError(f"maps must be floating point in [0, 1] or uint8, got {maps.dtype}")
    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, classes=cls, maps=q)


def load_maps(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read stored maps written by :func:`save_maps`.

    Args:
        path: An ``.npz`` file with ``classes`` and ``maps``.

    Returns:
        ``(classes, maps)``: int64 ``(L,)`` and float32 ``(L, H, W)`` in [0, 1] (``uint8 / 255``).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a stored-maps file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"stored maps not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = sorted(getattr(data, "files", []))
            if "classes" in files and "maps" in files:
                classes = data["classes"].astype(np.int64)
                raw = data["maps"]
    except Exception as e:  # not a zip / npz, or unreadable
        raise ValueError(f"{path}: cannot read stored maps ({type(e).__name__}: {e})") from None
    if "classes" not in files or "maps" not in files:
        raise ValueError(
            f"{path}: not a stored-maps file (needs arrays 'classes' and 'maps', found {files})"
        )
    if raw.dtype != np.uint8 or raw.ndim != 3 or raw.shape[0] != classes.shape[0]:
        raise ValueError(
            f"{path}: 'maps' must be uint8 (L, H, W) with L = {classes.shape[0]}, got "
            f"{raw.dtype} {raw.shape}"
        )
    maps = np.multiply(raw, np.float32(1.0 / 255.0), dtype=np.float32)
    return classes, maps


def dense_maps(
    classes: ArrayLike, maps: ArrayLike, num_classes: int = 20
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand stored maps to the dense inputs of :func:`proxy_ground_truth`.

    Args:
        classes: Class indices ``(L,)``, each below ``num_classes``.
        maps: Their maps ``(L, H, W)``.
        num_classes: ``K``, the number of foreground classes.

    Returns:
        ``(attention, labels)``: float32 ``(K, H, W)`` with zeros for classes not stored, and
        int64 multi-hot ``(K,)``.

    Example:
        >>> attention, labels = dense_maps([2], np.ones((1, 2, 2), np.float32), num_classes=4)
        >>> attention.shape, labels.tolist()
        (torch.Size([4, 2, 2]), [0, 0, 1, 0])
    """
    cls = torch.as_tensor(np.asarray(classes), dtype=torch.int64).flatten()
    m = as_tensor(maps, "maps")
    if m.ndim != 3 or m.shape[0] != cls.numel():
        raise ValueError(
            f"maps must have shape (L, H, W) with L = len(classes) = {cls.numel()}, "
            f"got {tuple(m.shape)}"
        )
    if cls.numel() and (int(cls.min()) < 0 or int(cls.max()) >= num_classes):
        raise ValueError(f"classes must be in [0, {num_classes}), got {cls.tolist()}")
    # np.zeros is lazily zeroed memory: pages of classes never stored are never touched
    dense = torch.from_numpy(np.zeros((num_classes, *m.shape[1:]), dtype=np.float32))
    dense[cls] = m.to(torch.float32)
    labels = torch.zeros(num_classes, dtype=torch.int64)
    labels[cls] = 1
    return dense, labels
