"""Functional erasing ops of the Self-Erasing Network (paper §3.2–3.3; SPEC §1 items 1–5).

Shapes: ``N`` batch, ``C`` feature channels, ``K`` classes, ``h x w`` feature-map size.

All thresholds are fractions of the *per-image maximum* of the erasing map. An image whose map is
all zero, or holds a non-finite value, carries no information: its ternary mask is all ones
(C-ReLU then equals ReLU) and its background mask all zeros. This is decided inside the arithmetic,
per image, with no host synchronisation, so the ops trace under ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import (
    check_choice,
    check_float,
    check_fraction,
    check_same,
    check_tensor,
    check_thresholds,
)
from .ops import _reference
from .ops._dispatch import BACKENDS, resolve_backend
from .ops._self_erase import self_erase_op

__all__ = ["class_agnostic_attention", "ternary_mask", "c_relu", "self_erase"]


def _check_map(attention: object, name: str = "attention") -> Tensor:
    attention = check_tensor(attention, name, ("N", 1, "h", "w"))
    check_float(attention, name)
    if attention.shape[2] == 0 or attention.shape[3] == 0:
        raise ValueError(f"{name} must have a non-empty spatial size, got {tuple(attention.shape)}")
    return attention


def class_agnostic_attention(cams: Tensor, labels: Tensor, normalize: str = "max") -> Tensor:
    """Class-agnostic erasing map from class activation maps and image-level labels.

    Per image: ``relu`` of the maps; each labelled class map normalised by its own spatial
    maximum (``"max"``) or min-max (``"minmax"``, as the authors' Caffe layer does); unlabelled
    classes set to 0; maximum over classes. The result is detached: no gradient flows from the
    erasing masks back into the branch that produced ``cams``.

    Args:
        cams: Class activation maps of branch S_A.
        labels: Multi-hot image-level labels (any dtype; non-zero means present).
        normalize: ``"max"`` (default) or ``"minmax"``.

    Returns:
        The erasing map in [0, 1], in the dtype of ``cams``. A class map that is all zero after the
        ``relu`` contributes zeros; non-finite values propagate (the masks then treat the image as
        carrying no information).

    Shape:
        - cams: :math:`(N, K, h, w)`
        - labels: :math:`(N, K)`
        - output: :math:`(N, 1, h, w)`

    Example:
        >>> cams = torch.tensor([[[[0.0, 2.0], [4.0, -1.0]], [[9.0, 9.0], [9.0, 9.0]]]])
        >>> class_agnostic_attention(cams, torch.tensor([[1, 0]]))
        tensor([[[[0.0000, 0.5000],
                  [1.0000, 0.0000]]]])
    """
    cams = check_tensor(cams, "cams", ("N", "K", "h", "w"))
    check_float(cams, "cams")
    labels = check_tensor(labels, "labels", ("N", "K"))
    if labels.shape != cams.shape[:2]:
        raise ValueError(
            f"labels must have shape (N, K) = {tuple(cams.shape[:2])} to match cams "
            f"{tuple(cams.shape)}, got {tuple(labels.shape)}"
        )
    if cams.shape[1] == 0:
        raise ValueError("cams must have at least one class channel (K >= 1)")
    if cams.shape[2] == 0 or cams.shape[3] == 0:
        raise ValueError(f"cams must have a non-empty spatial size, got {tuple(cams.shape)}")
    check_choice(normalize, "normalize", ("max", "minmax"))
    a = torch.relu(cams.detach())
    mx = a.amax(dim=(2, 3), keepdim=True)
    if normalize == "max":
        num, den = a, mx
    else:
        mn = a.amin(dim=(2, 3), keepdim=True)
        num, den = a - mn, mx - mn
    # a * 0 keeps NaNs of a map whose maximum is NaN, and is 0 for an all-zero map
    norm = torch.where(den > 0, num / den, a * 0)
    selected = (labels.detach() != 0)[:, :, None, None].to(cams.device)
    return torch.where(selected, norm, torch.zeros_like(norm)).amax(dim=1, keepdim=True)


def ternary_mask(attention: Tensor, delta_high: float = 0.7, delta_low: float = 0.05) -> Tensor:
    """Ternary mask of the three zones (paper §3.2): 0 attention, 1 potential, -1 background.

    ``T = 0`` where ``M >= delta_high * max(M)``, ``T = -1`` where ``M < delta_low * max(M)``,
    ``T = 1`` otherwise, the maximum taken per image. An image without information (all-zero or
    non-finite map) gets all ones.

    Args:
        attention: Erasing map, e.g. from :func:`class_agnostic_attention`.
        delta_high: Attention-zone threshold, a fraction of the per-image maximum.
        delta_low: Background-zone threshold, ``0 <= delta_low <= delta_high <= 1``.

    Returns:
        int8 tensor with values in {-1, 0, 1}, same shape as ``attention``.

    Shape:
        - attention: :math:`(N, 1, h, w)`
        - output: :math:`(N, 1, h, w)`

    Example:
        >>> m = torch.tensor([[[[1.0, 0.7, 0.69], [0.05, 0.04, 0.0]]]])
        >>> ternary_mask(m)
        tensor([[[[ 0,  0,  1],
                  [ 1, -1, -1]]]], dtype=torch.int8)
    """
    attention = _check_map(attention)
    delta_high, delta_low = check_thresholds(delta_high, delta_low)
    a, mx, info = _reference.image_max(attention.detach())
    return _reference.ternary(a, mx, info, delta_high, delta_low)


def c_relu(x: Tensor, mask: Tensor) -> Tensor:
    """Conditionally reversed linear unit (paper Eqn. 1–2): ``max(x, 0) * mask``.

    Args:
        x: Input features.
        mask: Mask broadcastable to ``x`` (typically a ternary mask of shape ``(N, 1, h, w)``). It
            is treated as a constant: no gradient flows into it.

    Returns:
        ``max(x, 0) * mask`` in the dtype of ``x``.

    Example:
        >>> x = torch.tensor([[[[-1.0, 2.0, 3.0]]]])
        >>> c_relu(x, torch.tensor([[[[1, 0, -1]]]], dtype=torch.int8))
        tensor([[[[ 0.,  0., -3.]]]])
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not isinstance(mask, Tensor):
        raise ValueError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    check_float(x, "x")
    try:
        shape = torch.broadcast_shapes(mask.shape, x.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} must broadcast to x of shape {tuple(x.shape)}"
        )
    return torch.relu(x) * mask.detach().to(x.dtype)


def self_erase(
    features: Tensor,
    attention: Tensor,
    delta_high: float = 0.7,
    delta_low: float = 0.05,
    delta_bg: float | None = None,
    background: str = "flip",
    backend: str = "auto",
    rectify: bool = True,
) -> tuple[Tensor, Tensor]:
    """The mask-and-flip step of SeeNet: the inputs of branches S_B and S_C in one fused op.

    ``x_b = C-ReLU(F, T) = max(F, 0) * T`` with the ternary mask ``T`` of :func:`ternary_mask`
    (with ``background="zero"``, the paper's ablation setting 2, the background zone is zeroed
    instead of sign-flipped); ``x_c = max(F, 0) * B`` with ``B = 1`` where
    ``M < delta_bg * max(M)`` (the background zone of S_C), else 0.

    The attention map is detached. Backward saves a 1-byte sign mask of the features and the two
    small per-pixel masks, never a float copy of the features.

    Args:
        features: Backbone features ``F``.
        attention: Erasing map ``M`` (non-negative; only ratios to its per-image maximum matter).
        delta_high: Attention-zone threshold (paper: 0.7).
        delta_low: Background-zone threshold of the ternary mask (paper: 0.05).
        delta_bg: Background threshold of S_C; ``None`` means ``(delta_high + delta_low) / 2``
            (paper §5.1; a choice, see the design notes).
        background: ``"flip"`` (SeeNet) or ``"zero"`` (ablation setting 2).
        backend: ``"auto"``, ``"reference"`` or ``"triton"``; ``SEENET_BACKEND`` overrides
            ``"auto"``.
        rectify: ``True`` (the paper's C-ReLU): the masks multiply ``max(F, 0)``. ``False``: they
            multiply ``F`` itself, ``x_b = F * T`` and ``x_c = F * B``, which is the same on
            non-negative features (VGG16's conv5_3 after its ReLU) and keeps the negative half of
            features that are not post-activation (a choice of ours, see
            :class:`seenet.SeeNet`'s ``feature_policy``).

    Returns:
        ``(x_b, x_c)`` in the dtype of ``features``.

    Shape:
        - features: :math:`(N, C, h, w)`
        - attention: :math:`(N, 1, h, w)`
        - x_b, x_c: :math:`(N, C, h, w)`

    Example:
        >>> f = torch.tensor([[[[1.0, -2.0, 3.0, 4.0]]]])
        >>> m = torch.tensor([[[[1.0, 0.5, 0.2, 0.0]]]])
        >>> x_b, x_c = self_erase(f, m)
        >>> x_b
        tensor([[[[ 0.,  0.,  3., -4.]]]])
        >>> x_c
        tensor([[[[0., 0., 3., 4.]]]])
    """
    features = check_tensor(features, "features", ("N", "C", "h", "w"))
    check_float(features, "features")
    attention = _check_map(attention)
    check_same(features, "features", attention, "attention", (0,), "batch size")
    check_same(features, "features", attention, "attention", (2, 3), "spatial size (h, w)")
    if features.device != attention.device:
        raise ValueError(
            f"features and attention must be on the same device, got {features.device} and "
            f"{attention.device}"
        )
    delta_high, delta_low = check_thresholds(delta_high, delta_low)
    delta_bg = (delta_high + delta_low) / 2 if delta_bg is None else check_fraction(
        delta_bg, "delta_bg"
    )
    check_choice(background, "background", ("flip", "zero"))
    check_choice(backend, "backend", BACKENDS)
    if not isinstance(rectify, bool):
        raise ValueError(f"rectify must be a bool, got {rectify!r}")
    resolved = resolve_backend(backend, features)
    x_b, x_c, _, _, _ = self_erase_op(
        features, attention.detach(), delta_high, delta_low, delta_bg, background == "zero",
        rectify, resolved,
    )
    return x_b, x_c
