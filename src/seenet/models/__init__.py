"""Models: SeeNet, its self-erasing heads, DeepLab-LargeFOV, SaliencyNet and the model registry."""

from __future__ import annotations

from typing import Any

from ._registry import create_model, list_models, register_model

__all__ = [
    "SaliencyNet",
    "create_model",
    "list_models",
    "lite0_package_file",
    "register_model",
    "segment",
]


def __getattr__(name: str) -> Any:
    # imported on first use, as the registry's providers are, so that `import seenet.models`
    # stays light and a module is never executed twice (which would register its models twice)
    if name == "SaliencyNet":
        from .saliency import SaliencyNet

        return SaliencyNet
    if name == "segment":
        from .deeplab import segment

        return segment
    if name == "lite0_package_file":
        from ._lite0 import lite0_package_file

        return lite0_package_file
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
