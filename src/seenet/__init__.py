"""seenet: the Self-Erasing Network (SeeNet, NeurIPS 2018) for PyTorch.

Self-erasing C-ReLU heads for any timm backbone, integral object attention maps from image-level
labels, proxy ground truth, and DeepLab-LargeFOV training and evaluation.

Public names are imported lazily, so ``import seenet`` stays cheap; every name in ``__all__`` is
importable from the top level.

Example:
    >>> import torch, seenet
    >>> features = torch.randn(2, 8, 5, 5)
    >>> attention = torch.rand(2, 1, 5, 5)
    >>> x_b, x_c = seenet.functional.self_erase(features, attention)
    >>> x_b.shape, x_c.shape
    (torch.Size([2, 8, 5, 5]), torch.Size([2, 8, 5, 5]))
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> module that defines it
_LAZY = {
    "functional": None,
    "cam": None,
    "crf": None,
    "metrics": None,
    "saliency": None,
    "data": None,
    "CReLU": "seenet.modules",
    "TernaryMask": "seenet.modules",
    "SelfErasingHead": "seenet.models.heads",
    "SeeNet": "seenet.models.seenet",
    "SaliencyNet": "seenet.models.saliency",
    "DeepLabLargeFOV": "seenet.models.deeplab",
    "segment": "seenet.models.deeplab",
    "proxy_ground_truth": "seenet.proxy",
    "create_model": "seenet.models._registry",
    "list_models": "seenet.models._registry",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'seenet' has no attribute {name!r}")
    module_name = _LAZY[name]
    if module_name is None:
        value = importlib.import_module(f"seenet.{name}")
    else:
        value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
