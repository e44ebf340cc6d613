"""Backend selection for ``seenet::self_erase``.

``backend="auto"`` uses the ``SEENET_BACKEND`` environment variable when it is set, else the Triton
kernels for CUDA tensors when Triton imports, else the reference. A missing Triton never raises for
``"auto"``; ``"triton"`` asks for the kernels explicitly and raises if they cannot run.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import torch

__all__ = ["BACKENDS", "available_backends", "resolve_backend", "backend_module"]

#: Accepted values of the ``backend`` argument.
BACKENDS = ("auto", "reference", "triton")

_triton_module: ModuleType | None = None
_triton_error: BaseException | None = None


def _load_triton() -> ModuleType | None:
    global _triton_module, _triton_error
    if _triton_module is None and _triton_error is None:
        try:
            _triton_module = importlib.import_module("seenet.ops._triton")
        except Exception as e:  # ImportError, or a broken Triton installation
            _triton_error = e
    return _triton_module


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def available_backends() -> list[str]:
    """Backends that can run here: always ``"reference"``, plus ``"triton"`` when it imports.

    Example:
        >>> "reference" in available_backends()
        True
    """
    return ["reference"] + (["triton"] if _load_triton() is not None else [])


def resolve_backend(backend: str, tensor: torch.Tensor) -> str:
    """Turn a ``backend`` argument into ``"reference"`` or ``"triton"`` for ``tensor``.

    Args:
        backend: ``"auto"``, ``"reference"`` or ``"triton"``.
        tensor: The features the op will run on (its device decides ``"auto"``).

    Returns:
        The backend to run.

    Raises:
        ValueError: For an unknown name, or ``"triton"`` where the kernels cannot run.

    Example:
        >>> resolve_backend("reference", torch.zeros(1))
        'reference'
    """
    if backend not in BACKENDS:
        options = ", ".join(map(repr, BACKENDS))
        raise ValueError(f"backend must be one of {options}, got {backend!r}")
    if backend == "auto":
        env = os.environ.get("SEENET_BACKEND", "").strip().lower()
        if env and env != "auto":
            if env not in BACKENDS:
                raise ValueError(
                    f"SEENET_BACKEND must be one of {', '.join(map(repr, BACKENDS))}, got {env!r}"
                )
            return resolve_backend(env, tensor)
        if tensor.is_cuda and _load_triton() is not None:
            return "triton"
        return "reference"
    if backend == "triton":
        if _load_triton() is None:
            raise ValueError(
                f"backend='triton' needs Triton, which failed to import: {_triton_error}"
            )
        if not tensor.is_cuda and not _interpreting():
            raise ValueError(
                "backend='triton' runs on CUDA tensors, or on CPU tensors when TRITON_INTERPRET=1 "
                f"was set before seenet.ops._triton was imported; got a {tensor.device} tensor"
            )
    return backend


def backend_module(name: str) -> ModuleType:
    """The module implementing ``forward``/``backward`` for a resolved backend name."""
    if name == "triton":
        module = _load_triton()
        if module is None:
            raise RuntimeError(f"the Triton backend failed to import: {_triton_error}")
        return module
    from . import _reference

    return _reference
