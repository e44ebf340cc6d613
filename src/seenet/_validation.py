"""Argument checks at the public boundary: one small helper, clear ``ValueError`` messages.

These look at shapes, ranks and scalar arguments only. Tensor *values* are never inspected here
(that would force a host synchronisation inside differentiable ops); data-level functions check
values themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["check_tensor", "check_fraction", "check_thresholds", "check_choice", "check_same"]


def _fmt(shape: Sequence[object]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_tensor(
    x: object,
    name: str,
    shape: Sequence[str | int | None],
) -> torch.Tensor:
    """Check that ``x`` is a tensor of the given rank and fixed sizes.

    Args:
        x: The value to check.
        name: Argument name used in the error message.
        shape: Expected shape; strings name a free dimension (``"N"``), integers fix a size,
            ``None`` accepts anything.

    Returns:
        ``x``, unchanged.

    Raises:
        ValueError: If ``x`` is not a tensor or its shape does not match.

    Example:
        >>> check_tensor(torch.zeros(2, 1, 3, 3), "attention", ("N", 1, "h", "w")).shape
        torch.Size([2, 1, 3, 3])
    """
    expected = _fmt(shape)
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of shape {expected}, got {type(x).__name__}"
        )
    if x.ndim != len(shape):
        raise ValueError(
            f"{name} must have shape {expected} ({len(shape)} dimensions), got {tuple(x.shape)}"
        )
    for i, (size, want) in enumerate(zip(x.shape, shape)):
        if isinstance(want, int) and size != want:
            raise ValueError(
                f"{name} must have shape {expected}: dimension {i} must be {want}, "
                f"got {tuple(x.shape)}"
            )
    return x


def check_same(
    a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str, dims: Sequence[int], what: str
) -> None:
    """Check that two tensors agree on the given dimensions.

    Args:
        a: First tensor.
        a_name: Its argument name.
        b: Second tensor.
        b_name: Its argument name.
        dims: Dimensions to compare (same index in both tensors).
        what: Human words for the dimensions, e.g. ``"batch size"``.

    Raises:
        ValueError: If a size differs.
    """
    for d in dims:
        if a.shape[d] != b.shape[d]:
            raise ValueError(
                f"{a_name} and {b_name} must have the same {what}: got {tuple(a.shape)} "
                f"and {tuple(b.shape)}"
            )


def check_fraction(value: object, name: str) -> float:
    """Check that ``value`` is a real number in [0, 1] and return it as ``float``.

    Example:
        >>> check_fraction(0.7, "delta_high")
        0.7
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def check_thresholds(delta_high: object, delta_low: object) -> tuple[float, float]:
    """Check the two ternary-mask thresholds: both in [0, 1] and ``delta_low <= delta_high``.

    Example:
        >>> check_thresholds(0.7, 0.05)
        (0.7, 0.05)
    """
    high = check_fraction(delta_high, "delta_high")
    low = check_fraction(delta_low, "delta_low")
    if low > high:
        raise ValueError(
            f"delta_low must not exceed delta_high, got delta_low={low} > delta_high={high}"
        )
    return high, low


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``.

    Example:
        >>> check_choice("flip", "background", ("flip", "zero"))
        'flip'
    """
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value  # type: ignore[return-value]
