"""Proxy ground truth (Algorithm 1 of the paper) and the stored attention maps it reads.

The segmentation network is trained on *proxy ground truth*: per pixel, the most probable of
background and the image's labelled classes, where the background probability is ``1 - D``
(``D`` the saliency map) and a class probability is the harmonic mean of its attention map and
the saliency (paper Eq. 3).

Stored maps are ``.npz`` files with two arrays: ``classes`` (int64, the class indices, background
not counted) and ``maps`` (uint8, ``round(255 * map)``, one map per entry of ``classes``); see
:func:`save_maps`, :func:`load_maps` and :func:`dense_maps`.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np
import torch

from ._io import atomic_write
from ._validation import check_fraction

__all__ = ["proxy_ground_truth", "save_maps", "load_maps", "dense_maps", "EPS"]

#: The guard against division by zero in the harmonic mean (SPEC item 10).
EPS = 1e-8

ArrayLike = Union[torch.Tensor, np.ndarray]


def _as_tensor(x: object, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    return x


def _check_unit_range(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or a value outside [0, 1] (one pass)."""
    if x.numel() == 0:
        return
    lo, hi = torch.aminmax(x)
    lo, hi = float(lo), float(hi)
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        if torch.isnan(x).any():
            raise ValueError(f"{name} must not contain NaN")
        raise ValueError(f"{name} must be in [0, 1], got values in [{lo:.6g}, {hi:.6g}]")


def proxy_ground_truth(
    attention: ArrayLike,
    saliency: ArrayLike,
    labels: ArrayLike,
    w: float = 1.0,
    saliency_threshold: float | None = None,
    conflict_threshold: float | None = None,
    ignore_index: int = 255,
) -> torch.Tensor:
    r"""Proxy ground truth from class attention maps, a saliency map and image labels.

    Algorithm 1 of the paper, vectorised over pixels and images. With saliency ``D`` and the
    attention map ``A_c`` of class ``c``:

    .. math::

        Q_0 = 1 - D, \qquad
        Q_c = \frac{w + 1}{w / (A_c + \epsilon) + 1 / (D + \epsilon)}
        \quad (c \in \mathbf{y}), \qquad
        G = \operatorname{argmax}_{l \in \{0\} \cup \mathbf{y}} Q_l,

    with :math:`\epsilon` = :data:`EPS` = 1e-8 guarding against division by zero. Classes that are
    not labelled are never chosen (their maps are not read at all, so they may hold anything); an
    image without labels is all background. Ties go to the lower id (background first).

    Two options, both off by default, are departures from the paper's Algorithm 1:

    * ``saliency_threshold``: saliency below it is set to 0 before the algorithm runs, the "hard
      threshold" background prior the paper's §4 mentions without giving a value.
    * ``conflict_threshold``: pixels where the two best labelled-class scores :math:`Q_c` both
      exceed it are set to ``ignore_index`` (whatever wins there), as the authors' later code
      does for pixels two objects claim.

    Args:
        attention: Class attention maps in [0, 1], ``(K, H, W)`` or ``(N, K, H, W)``, e.g. from
            :meth:`seenet.SeeNet.attention_maps`. Only the maps of labelled classes are used and
            checked.
        saliency: Saliency ``D`` in [0, 1], ``(H, W)`` or ``(N, H, W)``.
        labels: Multi-hot image labels with values in {0, 1}, ``(K,)`` or ``(N, K)`` (bool,
            integer or float).
        w: Weight of the attention in the harmonic mean (paper: 1). Must be positive.
        saliency_threshold: Optional hard threshold in [0, 1] on the saliency (see above).
        conflict_threshold: Optional threshold in [0, 1] marking conflicting pixels (see above).
        ignore_index: Label written on conflicting pixels.

    Returns:
        int64 label map(s) on ``attention``'s device: 0 is background, ``c + 1`` is class index
        ``c``, ``ignore_index`` marks conflicts.

    Shape:
        - attention: :math:`(K, H, W)` or :math:`(N, K, H, W)`
        - saliency: :math:`(H, W)` or :math:`(N, H, W)`
        - labels: :math:`(K,)` or :math:`(N, K)`
        - output: :math:`(H, W)` or :math:`(N, H, W)`

    Raises:
        ValueError: If shapes do not match, a value lies outside [0, 1] or is NaN, labels are not
            multi-hot, or an option is out of range.

    Example:
        >>> attention = torch.tensor([[[0.9, 0.1]], [[0.2, 0.8]]])  # K=2, H=1, W=2
        >>> saliency = torch.tensor([[0.8, 0.7]])
        >>> proxy_ground_truth(attention, saliency, torch.tensor([1, 1]))
        tensor([[1, 2]])
        >>> proxy_ground_truth(attention, saliency, torch.tensor([1, 0]))  # class 1 not labelled
        tensor([[1, 0]])
    """
    attention = _as_tensor(attention, "attention")
    saliency = _as_tensor(saliency, "saliency")
    labels = _as_tensor(labels, "labels")

    if attention.ndim not in (3, 4):
        raise ValueError(
            f"attention must have shape (K, H, W) or (N, K, H, W), got {tuple(attention.shape)}"
        )
    single = attention.ndim == 3
    want_sal = 2 if single else 3
    want_lab = 1 if single else 2
    if saliency.ndim != want_sal:
        expected = "(H, W)" if single else "(N, H, W)"
        raise ValueError(
            f"saliency must have shape {expected} to match attention {tuple(attention.shape)}, "
            f"got {tuple(saliency.shape)}"
        )
    if labels.ndim != want_lab:
        expected = "(K,)" if single else "(N, K)"
        raise ValueError(
            f"labels must have shape {expected} to match attention {tuple(attention.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if single:
        attention, saliency, labels = attention[None], saliency[None], labels[None]
    n, k, h, wd = attention.shape
    if tuple(saliency.shape) != (n, h, wd):
        raise ValueError(
            "saliency and attention must have the same batch and spatial size: attention "
            f"{tuple(attention.shape)[int(single):]}, "
            f"saliency {tuple(saliency.shape)[int(single):]}"
        )
    if tuple(labels.shape) != (n, k):
        raise ValueError(
            f"labels must have one entry per class of attention ({k}) and per image: attention "
            f"{tuple(attention.shape)[int(single):]}, labels {tuple(labels.shape)[int(single):]}"
        )
    if not (attention.is_floating_point() and saliency.is_floating_point()):
        raise ValueError(
            f"attention and saliency must be floating point, got {attention.dtype} and "
            f"{saliency.dtype}"
        )
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0 or w == float("inf"):
        raise ValueError(f"w must be a positive finite number, got {w!r}")
    if saliency_threshold is not None:
        saliency_threshold = check_fraction(saliency_threshold, "saliency_threshold")
    if conflict_threshold is not None:
        conflict_threshold = check_fraction(conflict_threshold, "conflict_threshold")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or ignore_index < 0:
        raise ValueError(f"ignore_index must be a non-negative int, got {ignore_index!r}")

    if labels.dtype == torch.bool:
        present = labels
    else:
        if labels.is_floating_point() and torch.isnan(labels).any():
            raise ValueError("labels must not contain NaN")
        present = labels != 0
        if not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError("labels must be multi-hot: every value must be 0 or 1")
    present = present.to(attention.device)

    # compute in float32 at least (float64 stays float64)
    dtype = torch.promote_types(attention.dtype, torch.float32)
    dtype = torch.promote_types(dtype, saliency.dtype)
    d = saliency.to(device=attention.device, dtype=dtype)
    _check_unit_range(d, "saliency")

    # only the classes labelled in some image of the batch are read
    used = torch.nonzero(present.any(dim=0)).flatten()
    a = attention.index_select(1, used).to(dtype)
    absent = ~present[:, used]
    any_absent = bool(absent.any())
    _check_unit_range(a[~absent] if any_absent else a, "attention")

    if saliency_threshold is not None:
        d = torch.where(d < saliency_threshold, torch.zeros((), dtype=dtype, device=d.device), d)

    out = torch.zeros((n, h, wd), dtype=torch.int64, device=attention.device)
    if used.numel() == 0:
        return out[0] if single else out

    wf = float(w)
    # Q_c = (w + 1) / (w / (A + eps) + 1 / (D + eps)), in place on the selected maps
    inv_d = (d + EPS).reciprocal_().unsqueeze(1)  # (N, 1, H, W)
    q = a.add_(EPS).reciprocal_().mul_(wf).add_(inv_d).reciprocal_().mul_(wf + 1.0)
    # classes not labelled in this image never win
    if any_absent:
        q.masked_fill_(absent[:, :, None, None], float("-inf"))
    q0 = (1.0 - d).unsqueeze(1)
    best_q, best_i = q.max(dim=1)  # first maximum: ties go to the lower class id
    lut = used + 1
    labels_map = lut[best_i]
    # background wins unless a class is strictly better (ties to the lower id 0)
    out = torch.where(best_q > q0[:, 0], labels_map, out)

    if conflict_threshold is not None and used.numel() >= 2:
        second = q.topk(2, dim=1).values[:, 1]
        out.masked_fill_(second > conflict_threshold, ignore_index)
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# stored maps


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
        _check_unit_range(torch.from_numpy(np.ascontiguousarray(maps)), "maps")
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
    maps = raw.astype(np.float32)
    maps *= np.float32(1.0 / 255.0)
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
    m = _as_tensor(maps, "maps")
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
