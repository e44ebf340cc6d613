"""Argument checks at the public boundary: one module, clear ``ValueError`` messages.

Every module checks its inputs through these helpers. Most look at types, shapes, ranks and scalar
arguments only; differentiable ops never inspect tensor *values* (that would force a host
synchronisation). :func:`check_unit_range` is the one value check, for data-level functions
(proxy ground truth, stored maps, saliency).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "as_array",
    "as_label_tensor",
    "as_rgb_uint8",
    "check_tensor",
    "check_float",
    "check_fraction",
    "check_thresholds",
    "check_choice",
    "check_same",
    "check_size",
    "check_scales",
    "check_rows",
    "check_count",
    "check_unit_range",
]


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


def as_tensor(x: object, name: str, detach: bool = False) -> torch.Tensor:
    """A ``torch.Tensor`` or numpy array as a tensor (numpy arrays share their memory).

    Args:
        x: The value.
        name: Argument name for the message.
        detach: Detach a tensor from autograd (scores and data never need its graph).

    Example:
        >>> as_tensor(np.zeros(2), "maps").dtype
        torch.float64
    """
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)
        # a read-only array (a decoded image's buffer) is copied: tensors share writable memory
        return torch.from_numpy(x if x.flags.writeable else x.copy())
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    return x.detach() if detach else x


def as_array(x: object, name: str) -> np.ndarray:
    """A numpy array or tensor (detached, on the CPU; bfloat16 widened) as a numpy array.

    Example:
        >>> as_array(torch.ones(2, dtype=torch.bfloat16), "pred").dtype
        dtype('float32')
    """
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16
            x = x.float()
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    return x


def as_label_tensor(x: object, name: str) -> torch.Tensor:
    """Integer class ids (tensor or numpy array) as an int64 tensor.

    Example:
        >>> as_label_tensor(np.array([0, 255], np.uint8), "target").tolist()
        [0, 255]
    """
    x = as_tensor(x, name)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids, got {x.dtype}")
    return x.long()


def as_rgb_uint8(image: object, name: str = "image") -> np.ndarray:
    """A PIL image, uint8 array or tensor of shape (H, W, 3) as a uint8 numpy array.

    Example:
        >>> as_rgb_uint8(np.zeros((2, 3, 3), np.uint8)).shape
        (2, 3, 3)
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"{name} must be a uint8 array of shape (H, W, 3) or a PIL image, got {arr.dtype} "
            f"{arr.shape}"
        )
    return arr


def check_float(x: torch.Tensor, name: str) -> torch.Tensor:
    """Check that ``x`` has a floating-point dtype.

    Example:
        >>> check_float(torch.zeros(1), "features").dtype
        torch.float32
    """
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_size(
    size: object, name: str = "size", default: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """An output size: ``None`` (``default``), a positive int (square) or ``(H, W)``.

    Example:
        >>> check_size([4, 5]), check_size(3), check_size(None, default=(2, 2))
        ((4, 5), (3, 3), (2, 2))
    """
    if size is None:
        return default
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size, size
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(
            f"{name} must be None, a positive int or (H, W) with two positive ints, got {size!r}"
        )
    return int(size[0]), int(size[1])


def check_scales(scales: object, name: str = "scales") -> tuple[float, ...]:
    """A non-empty sequence of positive numbers, as floats.

    Example:
        >>> check_scales([1, 0.5])
        (1.0, 0.5)
    """
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales or any(
        isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0 for s in scales
    ):
        raise ValueError(f"{name} must be a non-empty list of positive numbers, got {scales!r}")
    return tuple(float(s) for s in scales)


def check_rows(x: object, name: str, n: int, k: int | str = "K") -> torch.Tensor:
    """A ``(N, K)`` tensor with one row per image (``n`` images; ``k`` fixed or free).

    Example:
        >>> check_rows(torch.zeros(2, 3), "labels", 2).shape
        torch.Size([2, 3])
    """
    x = check_tensor(x, name, ("N", k))
    if x.shape[0] != n:
        raise ValueError(
            f"{name} must have one row per image: got {x.shape[0]} rows for {n} images"
        )
    return x


def check_count(value: object, name: str, minimum: int = 1) -> int:
    """An integer (not a bool) of at least ``minimum``.

    Example:
        >>> check_count(3, "num_convs", 0)
        3
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_unit_range(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or a value outside [0, 1] (one pass).

    Example:
        >>> check_unit_range(torch.tensor([0.0, 2.0]), "saliency")
        Traceback (most recent call last):
        ...
        ValueError: saliency must be in [0, 1], got values in [0, 2]
    """
    if x.numel() == 0:
        return
    lo, hi = torch.aminmax(x)
    lo, hi = float(lo), float(hi)
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        if torch.isnan(x).any():
            raise ValueError(f"{name} must not contain NaN")
        raise ValueError(f"{name} must be in [0, 1], got values in [{lo:.6g}, {hi:.6g}]")
