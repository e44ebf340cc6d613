"""A plain multi-label image classifier: the model that CAM-style methods explain.

:class:`ImageClassifier` is any timm classifier with a K-way head, trained on image-level labels
with binary cross-entropy. It has the training interface of :class:`seenet.SeeNet`
(``forward(images, labels)``, ``loss``, ``param_groups``), so the ``train-attention`` stage trains
it unchanged (``attention.model.name=classifier``), and ``cam-maps`` turns it into stored maps
with CAM, Grad-CAM or any torchcam / grad-cam method (:mod:`seenet.cam`). That makes the whole
chain (maps, proxy labels, segmentation) available to a classifier that is not a SeeNet.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._io import load_state_dict_file, save_state_dict_file
from .._validation import check_count, check_tensor
from ._param_groups import make_param_groups
from ._pretrained import hub_state_dict, load_checked
from ._registry import register_model

__all__ = ["ImageClassifier"]


class ImageClassifier(nn.Module):
    """A timm classifier with ``num_classes`` independent sigmoid outputs.

    Args:
        backbone: A timm model name (its own pooling and linear classifier are kept, resized to
            ``num_classes``).
        num_classes: K, the number of classes (VOC: 20).
        pretrained: ``False``; ``True`` for timm's ImageNet weights (every layer but the
            classifier); or the path of a weights file: ImageNet weights of the timm model, or a
            whole-model checkpoint written by :meth:`save_pretrained`.
        head_lr_mult: Learning-rate multiplier of the classifier in :meth:`param_groups`.
        **timm_kwargs: Extra ``timm.create_model`` arguments (e.g. ``drop_rate=0.2``).

    Attributes:
        model: The timm model.
        feature_layer: Dotted name of the module whose output the classifier pools (the default
            target of CAM-style methods), e.g. ``"model.layer4"``.

    Example:
        >>> net = ImageClassifier("resnet18", num_classes=3)
        >>> logits = net(torch.randn(2, 3, 32, 32))
        >>> logits.shape, net.feature_layer
        (torch.Size([2, 3]), 'model.layer4')
        >>> net.loss(logits, torch.tensor([[1.0, 0, 0], [0, 1, 1]])).ndim
        0
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        num_classes: int = 20,
        pretrained: bool | str | os.PathLike = False,
        head_lr_mult: float = 10.0,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        if not isinstance(backbone, str):
            raise ValueError(f"backbone must be a timm model name, got {type(backbone).__name__}")
        check_count(num_classes, "num_classes", 1)
        if isinstance(head_lr_mult, bool) or not isinstance(head_lr_mult, (int, float)) or not (
            head_lr_mult > 0
        ):
            raise ValueError(f"head_lr_mult must be a positive number, got {head_lr_mult!r}")
        try:
            self.model = timm.create_model(
                backbone, pretrained=False, num_classes=num_classes, **timm_kwargs
            )
        except RuntimeError as e:  # timm: unknown model
            raise ValueError(f"backbone: {e}") from None
        self.model_name = backbone
        self.num_classes = num_classes
        self.head_lr_mult = float(head_lr_mult)
        self._feature_layer: str | None = None
        if pretrained is not False and pretrained is not None:
            self.load_pretrained(pretrained)

    def load_pretrained(self, pretrained: bool | str | os.PathLike) -> None:
        """Load weights as the ``pretrained`` constructor argument does."""
        if pretrained is True:
            state = hub_state_dict(self.model_name)
            what = f"timm's weights of {self.model_name!r}"
        elif isinstance(pretrained, (str, os.PathLike)) and not isinstance(pretrained, bool):
            state = load_state_dict_file(pretrained)
            what = os.fspath(pretrained)
            if any(k.startswith("model.") for k in state):
                load_checked(self, state, f"ImageClassifier checkpoint {what!r}")
                return
        else:
            raise ValueError(
                f"pretrained must be False, True or the path of a weights file, got {pretrained!r}"
            )
        head = {f"{name}.weight" for name in self._classifier_names()} | {
            f"{name}.bias" for name in self._classifier_names()
        }
        state = {k: v for k, v in state.items() if k not in head}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing = [k for k in missing if k not in head]
        if missing or unexpected:
            raise ValueError(
                f"{what} does not fit {self.model_name}: missing {missing[:5]}, unexpected "
                f"{unexpected[:5]}"
            )

    @property
    def feature_layer(self) -> str:
        """The module whose output the global pooling reads (found once, by a small probe)."""
        if self._feature_layer is None:
            self._feature_layer = "model." + _pooled_module(self.model)
        return self._feature_layer

    def _classifier_names(self) -> list[str]:
        classifier = self.model.get_classifier()
        return [n for n, m in self.model.named_modules() if m is classifier]

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the whole model's state dict (atomically; safetensors if the name says so)."""
        save_state_dict_file(self.state_dict(), path)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores (logits) ``(N, K)``; ``labels`` is accepted and ignored (SeeNet's API)."""
        images = check_tensor(images, "images", ("N", 3, "H", "W"))
        return self.model(images)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy with the multi-hot ``labels``, averaged over N·K."""
        labels = check_tensor(labels, "labels", ("N", self.num_classes))
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """SGD groups: the timm body at ``lr``, the classifier at ``head_lr_mult · lr``."""
        head = {id(p) for p in self.model.get_classifier().parameters()}
        return make_param_groups(
            self, lr, weight_decay, lambda _, p: id(p) in head, names=("backbone", "classifier"),
            new_mult=self.head_lr_mult,
        )  # fmt: skip


def _pooled_module(model: nn.Module) -> str:
    """Name of the last module whose output is the input of the model's global pooling."""
    pool = getattr(model, "global_pool", None) or getattr(
        getattr(model, "head", None), "global_pool", None
    )
    if not isinstance(pool, nn.Module):
        raise ValueError(
            f"cannot find the global pooling of {type(model).__name__}; pass the target layer"
        )
    outputs: dict[int, str] = {}
    pooled: list[torch.Tensor] = []
    hooks = [pool.register_forward_pre_hook(lambda m, args: pooled.append(args[0]))]
    for name, module in model.named_modules():
        if name and module is not pool:
            hooks.append(module.register_forward_hook(
                lambda m, a, out, name=name: outputs.__setitem__(id(out), name)
                if isinstance(out, torch.Tensor) else None
            ))  # fmt: skip
    device = next(model.parameters()).device
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    if not pooled or id(pooled[0]) not in outputs:
        raise ValueError(f"cannot find the layer pooled by {type(model).__name__}")
    return outputs[id(pooled[0])]


@register_model(name="classifier")
def _classifier(pretrained: bool | str | os.PathLike = False, **kwargs: Any) -> ImageClassifier:
    """:class:`ImageClassifier` on the timm model given as ``backbone=``.

    Args:
        pretrained: See :class:`ImageClassifier`.
        **kwargs: :class:`ImageClassifier` arguments, ``backbone`` included.
    """
    return ImageClassifier(pretrained=pretrained, **kwargs)
