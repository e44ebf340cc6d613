"""A small model registry in the spirit of timm's: ``create_model(name, pretrained, **kwargs)``."""

from __future__ import annotations

import fnmatch
import importlib
from typing import Any, Callable, TypeVar

import torch.nn as nn

__all__ = ["register_model", "create_model", "list_models"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}
# modules whose import registers models; imported on first use so `import seenet` stays light
_PROVIDERS = (
    "seenet.models.seenet",
    "seenet.models.deeplab",
    "seenet.models.saliency",
    "seenet.models.classifier",
    "seenet.models._lite0",
)

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F | None = None, *, name: str | None = None) -> Any:
    """Register a model factory under its function name (or ``name``); usable as a decorator.

    The factory takes ``pretrained`` and keyword arguments and returns an ``nn.Module``.

    Example:
        >>> @register_model(name="my_tiny_net")
        ... def _tiny(pretrained=False, **kwargs):
        ...     return nn.Linear(2, 2)
        >>> type(create_model("my_tiny_net")).__name__
        'Linear'
    """
    if fn is None:
        return lambda f: register_model(f, name=name)
    key = name or fn.__name__
    if key in _MODELS and _MODELS[key] is not fn:
        raise ValueError(f"a model named {key!r} is already registered")
    _MODELS[key] = fn
    return fn


def _load_providers() -> None:
    for module in _PROVIDERS:
        importlib.import_module(module)


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models, sorted, optionally filtered by a shell-style pattern.

    Example:
        >>> import seenet
        >>> "seenet_vgg16" in seenet.list_models()
        True
        >>> seenet.list_models("deeplab_*vgg16")
        ['deeplab_largefov_vgg16']
    """
    _load_providers()
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def create_model(name: str, pretrained: bool | str = False, **kwargs: Any) -> nn.Module:
    """Create a registered model.

    Args:
        name: A name from :func:`list_models`.
        pretrained: ``False``; ``True`` for timm's hub weights of the backbone; or the path of a
            local ``.safetensors`` / PyTorch state-dict file (backbone or whole model).
        **kwargs: Passed to the model's constructor.

    Returns:
        The model.

    Raises:
        ValueError: If ``name`` is not registered.

    Example:
        >>> import seenet
        >>> model = seenet.create_model("seenet_resnet50", num_classes=5)
        >>> type(model).__name__
        'SeeNet'
    """
    _load_providers()
    if name not in _MODELS:
        raise ValueError(f"unknown model name {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](pretrained=pretrained, **kwargs)
