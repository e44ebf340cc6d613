"""``nn.Module`` wrappers of the functional erasing ops."""

from __future__ import annotations

from torch import Tensor, nn

from . import functional as F
from ._validation import check_thresholds

__all__ = ["CReLU", "TernaryMask"]


class CReLU(nn.Module):
    """Conditionally reversed linear unit, ``max(x, 0) * mask``.

    See :func:`~seenet.functional.c_relu`.

    Example:
        >>> import torch
        >>> CReLU()(torch.tensor([-1.0, 2.0, 3.0]), torch.tensor([1, 1, -1]))
        tensor([ 0.,  2., -3.])
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Apply C-ReLU with ``mask`` broadcast over ``x``."""
        return F.c_relu(x, mask)


class TernaryMask(nn.Module):
    """Ternary mask of the three zones (see :func:`~seenet.functional.ternary_mask`).

    Args:
        delta_high: Attention-zone threshold, a fraction of the per-image maximum (paper: 0.7).
        delta_low: Background-zone threshold (paper: 0.05).

    Example:
        >>> import torch
        >>> TernaryMask()(torch.tensor([[[[1.0, 0.5, 0.0]]]]))
        tensor([[[[ 0,  1, -1]]]], dtype=torch.int8)
    """

    def __init__(self, delta_high: float = 0.7, delta_low: float = 0.05) -> None:
        super().__init__()
        self.delta_high, self.delta_low = check_thresholds(delta_high, delta_low)

    def forward(self, attention: Tensor) -> Tensor:
        """Ternary int8 mask of shape ``(N, 1, h, w)``."""
        return F.ternary_mask(attention, self.delta_high, self.delta_low)

    def extra_repr(self) -> str:
        """The thresholds, shown in ``repr``."""
        return f"delta_high={self.delta_high}, delta_low={self.delta_low}"
