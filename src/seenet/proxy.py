"""Proxy ground truth (Algorithm 1 of the paper) from class attention maps and saliency.

The segmentation network is trained on *proxy ground truth*: per pixel, the most probable of
background and the image's labelled classes, where the background probability is ``1 - D``
(``D`` the saliency map) and a class probability is the harmonic mean of its attention map and
the saliency (paper Eq. 3).

Stored maps (one ``.npz`` per image, :mod:`seenet.data.maps`) feed
:func:`proxy_ground_truth_from_maps` without expanding them to all classes.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

from ._validation import as_tensor, check_fraction, check_unit_range

__all__ = ["proxy_ground_truth", "proxy_ground_truth_from_maps", "EPS"]

#: The guard against division by zero in the harmonic mean (SPEC item 10).
EPS = 1e-8

ArrayLike = Union[torch.Tensor, np.ndarray]


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
    image without labels is all background. Ties go to the lower id (background first). As
    :math:`Q_c` increases strictly with :math:`A_c`, the best labelled class at a pixel is the one
    with the largest attention, and only its :math:`Q_c` is computed.

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
    attention = as_tensor(attention, "attention")
    saliency = as_tensor(saliency, "saliency")
    labels = as_tensor(labels, "labels")

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
    w, saliency_threshold, conflict_threshold = _check_options(
        w, saliency_threshold, conflict_threshold, ignore_index
    )

    # labels are small: check and select on the host
    lab = labels.detach().cpu()
    if lab.is_floating_point() and bool(torch.isnan(lab).any()):
        raise ValueError("labels must not contain NaN")
    if lab.dtype != torch.bool and not bool(((lab == 0) | (lab == 1)).all()):
        raise ValueError("labels must be multi-hot: every value must be 0 or 1")
    present = (lab != 0).numpy()  # (N, K) bool
    used = np.flatnonzero(present.any(axis=0))  # only classes labelled in some image are read
    if used.size == 0:
        check_unit_range(saliency, "saliency")
        out = torch.zeros((n, h, wd), dtype=torch.int64, device=attention.device)
        return out[0] if single else out
    if used.size == 1:
        j = int(used[0])
        a = attention[:, j : j + 1]  # a view
    else:
        a = attention.index_select(1, torch.from_numpy(used).to(attention.device))
    out = _algorithm1(
        a, saliency, present[:, used], (used + 1).tolist(), w, saliency_threshold,
        conflict_threshold, ignore_index,
    )  # fmt: skip
    return out[0] if single else out


def _algorithm1(
    a: torch.Tensor,
    saliency: torch.Tensor,
    present: np.ndarray,
    ids: list[int],
    w: float,
    saliency_threshold: float | None,
    conflict_threshold: float | None,
    ignore_index: int,
) -> torch.Tensor:
    """Algorithm 1 on the maps ``a`` (N, L, H, W) of ``L`` classes with output ids ``ids``.

    ``present`` (N, L) says which of them are labelled in each image. Arguments are checked by
    the callers except the values of ``a`` and ``saliency``.
    """
    n, num, h, wd = a.shape
    # compute in float32 at least (float64 stays float64)
    dtype = torch.promote_types(torch.promote_types(a.dtype, torch.float32), saliency.dtype)
    a = a.to(dtype)
    d = saliency.to(device=a.device, dtype=dtype)
    check_unit_range(d, "saliency")
    absent = ~present
    any_absent = bool(absent.any())
    if any_absent:
        absent_t = torch.from_numpy(absent).to(a.device)
        check_unit_range(a[~absent_t], "attention")
    else:
        check_unit_range(a, "attention")

    if saliency_threshold is not None:
        d = torch.where(d < saliency_threshold, torch.zeros((), dtype=dtype, device=d.device), d)

    # Q_c increases strictly with A_c at a fixed pixel, so the best labelled class is the one with
    # the largest attention (first maximum: ties go to the lower id); only its Q is computed.
    # A running maximum over the few classes is much faster on CPU than max(dim=1).
    if any_absent:  # classes not labelled in this image never win
        a = a.masked_fill(absent_t[:, :, None, None], float("-inf"))
    best_a = a[:, 0]
    # ids in int16 where they fit: masked_fill is slow on CPU, multiplying by a mask is not
    id_dtype = torch.int16 if max(ids) < 2**15 else torch.int64
    best_id = torch.full((n, h, wd), ids[0], dtype=id_dtype, device=a.device)
    second_a = torch.full_like(best_a, float("-inf")) if conflict_threshold is not None else None
    for j in range(1, num):
        a_j = a[:, j]
        better = a_j > best_a  # strict: ties stay with the lower id
        if second_a is not None:
            second_a = torch.maximum(second_a, torch.minimum(a_j, best_a))
        best_a = torch.maximum(best_a, a_j)
        best_id.mul_(~better).add_(better.to(id_dtype).mul_(ids[j]))

    wf = float(w)
    inv_d = (d + EPS).reciprocal_()

    def harmonic(a_c: torch.Tensor) -> torch.Tensor:
        # Q_c = (w + 1) / (w / (A_c + eps) + 1 / (D + eps))
        return (a_c + EPS).reciprocal_().mul_(wf).add_(inv_d).reciprocal_().mul_(wf + 1.0)

    # background wins unless the best class is strictly better (ties go to the lower id 0)
    wins = harmonic(best_a) > (1.0 - d)
    if any_absent:
        labelled = torch.from_numpy(present.any(axis=1)).to(a.device)
        wins &= labelled[:, None, None]  # images without labels
    out = best_id.mul_(wins).to(torch.int64)

    if second_a is not None and num >= 2:
        conflict = (harmonic(second_a) > conflict_threshold) & (second_a >= 0)
        out.masked_fill_(conflict, ignore_index)
    return out


def proxy_ground_truth_from_maps(
    classes: ArrayLike,
    maps: ArrayLike,
    saliency: ArrayLike,
    w: float = 1.0,
    saliency_threshold: float | None = None,
    conflict_threshold: float | None = None,
    ignore_index: int = 255,
) -> torch.Tensor:
    """:func:`proxy_ground_truth` for one image from its stored maps (labelled classes only).

    Equal to ``proxy_ground_truth(*seenet.data.maps.dense_maps(classes, maps, K), saliency)`` for
    any ``K``
    above the largest class, without building the dense ``(K, H, W)`` input: the batch job's
    fast path, taking :func:`seenet.data.maps.load_maps`'s output as it is.

    Args:
        classes: The labelled class indices ``(L,)``, distinct.
        maps: Their attention maps ``(L, H, W)`` in [0, 1].
        saliency: ``(H, W)`` in [0, 1].
        w: As in :func:`proxy_ground_truth`.
        saliency_threshold: As in :func:`proxy_ground_truth`.
        conflict_threshold: As in :func:`proxy_ground_truth`.
        ignore_index: As in :func:`proxy_ground_truth`.

    Returns:
        int64 ``(H, W)``: 0 background, ``c + 1`` for class index ``c``.

    Example:
        >>> maps = torch.tensor([[[0.9, 0.1]], [[0.2, 0.8]]])
        >>> proxy_ground_truth_from_maps([4, 11], maps, torch.tensor([[0.8, 0.7]]))
        tensor([[ 5, 12]])
    """
    cls = np.asarray(classes.cpu() if isinstance(classes, torch.Tensor) else classes)
    if cls.ndim != 1 or (cls.size and not np.issubdtype(cls.dtype, np.integer)):
        raise ValueError(f"classes must be a 1-D array of ints, got {cls.dtype} {cls.shape}")
    if (cls < 0).any() or len(np.unique(cls)) != len(cls):
        raise ValueError(f"classes must be distinct non-negative ints, got {cls.tolist()}")
    m = as_tensor(maps, "maps")
    d = as_tensor(saliency, "saliency")
    if m.ndim != 3 or m.shape[0] != cls.size:
        raise ValueError(
            f"maps must have shape (L, H, W) with L = len(classes) = {cls.size}, "
            f"got {tuple(m.shape)}"
        )
    if d.ndim != 2 or tuple(d.shape) != tuple(m.shape[1:]):
        raise ValueError(
            f"saliency must have shape (H, W) = {tuple(m.shape[1:])} like maps, "
            f"got {tuple(d.shape)}"
        )
    if not (m.is_floating_point() and d.is_floating_point()):
        raise ValueError(f"maps and saliency must be floating point, got {m.dtype} and {d.dtype}")
    w, saliency_threshold, conflict_threshold = _check_options(
        w, saliency_threshold, conflict_threshold, ignore_index
    )
    if cls.size == 0:
        check_unit_range(d, "saliency")
        return torch.zeros(tuple(m.shape[1:]), dtype=torch.int64, device=m.device)
    order = np.argsort(cls, kind="stable")  # ids ascending: ties go to the lower id
    if not (order == np.arange(cls.size)).all():
        m = m.index_select(0, torch.from_numpy(order).to(m.device))
        cls = cls[order]
    out = _algorithm1(
        m[None], d[None], np.ones((1, cls.size), dtype=bool), (cls.astype(np.int64) + 1).tolist(),
        w, saliency_threshold, conflict_threshold, ignore_index,
    )  # fmt: skip
    return out[0]


def _check_options(
    w: object, saliency_threshold: object, conflict_threshold: object, ignore_index: object
) -> tuple[float, float | None, float | None]:
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0 or w == float("inf"):
        raise ValueError(f"w must be a positive finite number, got {w!r}")
    if saliency_threshold is not None:
        saliency_threshold = check_fraction(saliency_threshold, "saliency_threshold")
    if conflict_threshold is not None:
        conflict_threshold = check_fraction(conflict_threshold, "conflict_threshold")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or ignore_index < 0:
        raise ValueError(f"ignore_index must be a non-negative int, got {ignore_index!r}")
    return float(w), saliency_threshold, conflict_threshold  # type: ignore[return-value]
