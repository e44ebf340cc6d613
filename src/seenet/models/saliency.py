"""SaliencyNet: a small, class-agnostic salient-object detector on any backbone.

The paper takes the background prior of its proxy ground truth from a salient-object detector
(DSS, Hou et al., CVPR 2017) trained on MSRA-B. :class:`SaliencyNet` is a light network in that
spirit: a backbone gives several feature levels; a top-down decoder (1×1 lateral convolutions to
``decoder_channels``, then from the deepest level down: upsample, add the lateral, 3×3
convolution, optional BatchNorm, ReLU) ends in a one-channel prediction at the finest level,
upsampled bilinearly to the input size. It is trained with binary cross-entropy, optionally plus
a soft-IoU loss, on images with binary object masks (:mod:`seenet.data.sod`).

Its maps are *saliency*, not class evidence: they mark the objects that stand out, whatever
their class.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._io import save_state_dict_file
from .._validation import check_choice, check_size, check_tensor
from ._param_groups import make_param_groups
from ._registry import register_model
from .backbones import (
    TimmFeaturePyramid,
    _check_indices,
    infer_feature_levels,
    load_pretrained_weights,
)

__all__ = ["SALIENCY_LOSSES", "SaliencyDecoder", "SaliencyNet", "saliency_resnet50"]

Pretrained = Union[bool, str, os.PathLike]

#: The losses :meth:`SaliencyNet.loss` offers.
SALIENCY_LOSSES = ("bce", "bce_iou")


class _SelectLevels(nn.Module):
    """A plain multi-level backbone with some of its levels picked."""

    def __init__(self, body: nn.Module, indices: tuple[int, ...]) -> None:
        super().__init__()
        self.body = body
        self.indices = indices

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        out = self.body(images)
        levels = [out] if isinstance(out, torch.Tensor) else list(out)
        return [levels[i] for i in self.indices]


class SaliencyDecoder(nn.Module):
    """Top-down decoder: lateral 1×1 convs, upsample-and-add, 3×3 conv (+BN) + ReLU, 1×1 output.

    Args:
        in_channels: Channels of the feature levels, shallow to deep.
        channels: Width of the decoder.
        batch_norm: BatchNorm after each 3×3 convolution (its bias is then left out).
        init_std: Standard deviation of the initial conv weights (biases start at 0); ``None``
            keeps PyTorch's default initialisation of ``nn.Conv2d``.

    Shape:
        - Input: a list of (N, in_channels[i], h_i, w_i), shallow to deep.
        - Output: (N, 1, h_0, w_0), logits at the finest level.

    Example:
        >>> dec = SaliencyDecoder([8, 16], channels=4)
        >>> dec([torch.zeros(2, 8, 8, 8), torch.zeros(2, 16, 4, 4)]).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int = 32,
        batch_norm: bool = True,
        init_std: float | None = None,
    ) -> None:
        super().__init__()
        in_channels = list(in_channels)
        if not in_channels or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in in_channels
        ):
            raise ValueError(f"in_channels must be positive ints, got {in_channels!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"decoder_channels must be a positive int, got {channels!r}")
        if not isinstance(batch_norm, bool):
            raise ValueError(f"batch_norm must be a bool, got {batch_norm!r}")
        if init_std is not None and (
            isinstance(init_std, bool) or not isinstance(init_std, (int, float)) or init_std <= 0
        ):
            raise ValueError(f"init_std must be None or a positive number, got {init_std!r}")
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)

        def smooth() -> nn.Sequential:
            layers: list[nn.Module] = [
                nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)
            ]
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.ReLU(inplace=True))
            return nn.Sequential(*layers)

        self.smooth = nn.ModuleList(smooth() for _ in in_channels)
        self.predict = nn.Conv2d(channels, 1, 1)
        if init_std is not None:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=float(init_std))
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits (N, 1, h_0, w_0) from the feature levels, shallow to deep."""
        if len(features) != len(self.lateral):
            raise ValueError(
                f"the decoder expects {len(self.lateral)} feature levels, got {len(features)}"
            )
        x = self.smooth[-1](self.lateral[-1](features[-1]))
        for i in range(len(features) - 2, -1, -1):
            lateral = self.lateral[i](features[i])
            x = F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            x = self.smooth[i](x + lateral)
        return self.predict(x)


class SaliencyNet(nn.Module):
    r"""A class-agnostic salient-object network: multi-level backbone and a light decoder.

    Args:
        backbone: A timm model name (created with ``features_only=True``, see
            :class:`~seenet.models.backbones.TimmFeaturePyramid`) or an ``nn.Module`` mapping
            (N, 3, H, W) images to a list (or tuple) of feature maps, shallow to deep (a single
            (N, C, h, w) tensor counts as one level).
        pretrained: ``False``; ``True`` for timm's ImageNet weights of the backbone (offline this
            fails within seconds and says how to pass a file); or the path of a local
            ``.safetensors`` / PyTorch state-dict file holding either backbone weights (timm's
            full-model state dict, or the backbone's own) or a whole :class:`SaliencyNet`
            written by :meth:`save_pretrained` (told apart by its ``decoder.*`` keys).
        feature_indices: Which feature levels the decoder reads, shallow to deep; ``None`` for a
            timm name is :func:`~seenet.models.backbones.default_feature_indices` (strides 8, 16
            and 32 on ResNets and EfficientNets), for a module every level it returns.
        decoder_channels: Width of the decoder (32).
        loss: ``"bce"`` (binary cross-entropy with logits) or ``"bce_iou"`` (plus ``1 -`` the soft
            IoU of each image, averaged over the batch), see :meth:`loss`.
        batch_norm: BatchNorm after each 3×3 convolution of the decoder.
        init_std: Standard deviation of the decoder's initial weights; ``None`` keeps PyTorch's
            default initialisation of ``nn.Conv2d``.
        head_lr_mult: Learning-rate multiplier of the decoder in :meth:`param_groups` (10, the
            usual factor for new layers on an ImageNet backbone).
        backbone_kwargs: Extra ``timm.create_model`` arguments (timm names only).

    Attributes:
        backbone: The feature extractor; ``backbone(images)`` returns a list of feature maps.
        decoder: The :class:`SaliencyDecoder`.
        feature_channels: Channels of the levels the decoder reads.
        reductions: Their strides.

    Shape:
        - input: :math:`(N, 3, H, W)`, normalised images.
        - output: :math:`(N, 1, H, W)`, logits of "salient".

    Example:
        >>> class TwoLevels(nn.Module):  # any module returning feature maps, shallow to deep
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.a = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        ...         self.b = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        ...     def forward(self, x):
        ...         a = torch.relu(self.a(x))
        ...         return [a, torch.relu(self.b(a))]
        >>> model = SaliencyNet(TwoLevels(), decoder_channels=8)
        >>> model.feature_channels, model.reductions
        ([8, 16], [4, 8])
        >>> images, masks = torch.randn(2, 3, 64, 48), torch.randint(0, 2, (2, 64, 48)).float()
        >>> logits = model(images)
        >>> logits.shape
        torch.Size([2, 1, 64, 48])
        >>> model.loss(logits, masks).backward()
        >>> probs = model.predict(images, size=(32, 24))
        >>> probs.shape, bool(probs.min() >= 0), bool(probs.max() <= 1)
        (torch.Size([2, 32, 24]), True, True)
    """

    def __init__(
        self,
        backbone: str | nn.Module = "efficientnet_lite0",
        pretrained: Pretrained = False,
        feature_indices: Sequence[int] | None = None,
        decoder_channels: int = 32,
        loss: str = "bce",
        *,
        batch_norm: bool = True,
        init_std: float | None = None,
        head_lr_mult: float = 10.0,
        backbone_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.loss_name = check_choice(loss, "loss", SALIENCY_LOSSES)
        if (
            isinstance(head_lr_mult, bool)
            or not isinstance(head_lr_mult, (int, float))
            or not head_lr_mult > 0
        ):
            raise ValueError(f"head_lr_mult must be a positive number, got {head_lr_mult!r}")
        self.head_lr_mult = float(head_lr_mult)
        if not (pretrained is False or pretrained is True or pretrained is None) and not (
            isinstance(pretrained, (str, os.PathLike))
        ):
            raise ValueError(
                f"pretrained must be False, True or the path of a weights file, got {pretrained!r}"
            )
        if isinstance(backbone, str):
            self.backbone: nn.Module = TimmFeaturePyramid(
                backbone, feature_indices, **dict(backbone_kwargs or {})
            )
            self.feature_channels = list(self.backbone.out_channels)
            self.reductions = list(self.backbone.reductions)
        elif isinstance(backbone, nn.Module):
            if backbone_kwargs:
                raise ValueError("backbone_kwargs applies to timm backbones only; got a module")
            channels, reductions = infer_feature_levels(backbone)
            if feature_indices is not None:
                indices = _check_indices(feature_indices, len(channels), "the backbone module")
                backbone = _SelectLevels(backbone, indices)
                channels = [channels[i] for i in indices]
                reductions = [reductions[i] for i in indices]
            self.backbone = backbone
            self.feature_channels, self.reductions = channels, reductions
        else:
            raise ValueError(
                f"backbone must be a timm model name or an nn.Module, got {type(backbone).__name__}"
            )
        self.decoder = SaliencyDecoder(
            self.feature_channels, decoder_channels, batch_norm=batch_norm, init_std=init_std
        )
        if pretrained is not False and pretrained is not None:
            self.load_pretrained(pretrained)

    # ------------------------------------------------------------------ weights
    def load_pretrained(self, pretrained: Pretrained) -> None:
        """Load weights as the ``pretrained`` constructor argument does.

        Args:
            pretrained: ``True`` for timm's ImageNet weights of the backbone, or a path to
                backbone weights or to a whole-model checkpoint.

        Raises:
            ValueError: If the weights do not fit (the message lists missing and unexpected
                keys and shape mismatches), or ``True`` is asked for a module backbone.
            RuntimeError: If timm's weights cannot be downloaded.
            FileNotFoundError: If the file does not exist.
        """
        load_pretrained_weights(self, pretrained, ("decoder.",), "SaliencyNet")

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the whole model's state dict (atomically; safetensors if the name says so).

        ``SaliencyNet(<same arguments>, pretrained=path)`` gives back exactly these weights.

        Args:
            path: Destination, e.g. ``"saliency.safetensors"`` or ``"saliency.pt"``.
        """
        save_state_dict_file(self.state_dict(), path)

    # ------------------------------------------------------------------ forward
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Saliency logits at the input resolution.

        Args:
            images: Normalised images (N, 3, H, W).

        Returns:
            Logits (N, 1, H, W): the finest level's prediction, upsampled bilinearly.
        """
        images = check_tensor(images, "images", ("N", 3, "H", "W"))
        features = self.backbone(images)
        if isinstance(features, torch.Tensor):
            features = [features]
        logits = self.decoder(list(features))
        if tuple(logits.shape[-2:]) != tuple(images.shape[-2:]):
            logits = F.interpolate(
                logits, size=images.shape[-2:], mode="bilinear", align_corners=False
            )
        return logits

    def loss(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        r"""The training loss of :meth:`forward`'s logits against binary object masks.

        ``"bce"``: binary cross-entropy with logits, averaged over all pixels. ``"bce_iou"``: that
        plus the mean over images of the soft IoU loss of BASNet,
        :math:`1 - (1 + \sum p m) / (1 + \sum (p + m - p m))` with
        :math:`p = \sigma(\text{logits})`; the one pixel added to both sums keeps it defined,
        and near 0, for a crop without object that the network rightly calls empty.

        Args:
            logits: (N, 1, H, W) or (N, H, W).
            masks: Object masks with values in {0, 1} (bool, integer or float; soft targets in
                [0, 1] also work), (N, H, W) or (N, 1, H, W), the logits' size. There is no
                ignore value: the training transform pads crops with background.

        Returns:
            The scalar loss.
        """
        if isinstance(logits, torch.Tensor) and logits.ndim == 4:
            logits = check_tensor(logits, "logits", ("N", 1, "H", "W"))[:, 0]
        logits = check_tensor(logits, "logits", ("N", "H", "W"))
        if isinstance(masks, torch.Tensor) and masks.ndim == 4:
            masks = check_tensor(masks, "masks", ("N", 1, "H", "W"))[:, 0]
        masks = check_tensor(masks, "masks", ("N", "H", "W"))
        if masks.shape != logits.shape:
            raise ValueError(
                f"masks must match the logits' batch and size: got {tuple(masks.shape)} for "
                f"logits of {tuple(logits.shape)}"
            )
        logits = logits.float()
        target = masks.to(device=logits.device, dtype=logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        if self.loss_name == "bce_iou":
            p = torch.sigmoid(logits)
            inter = (p * target).sum(dim=(1, 2))
            union = (p + target - p * target).sum(dim=(1, 2))
            loss = loss + (1.0 - (inter + 1.0) / (union + 1.0)).mean()
        return loss

    @torch.no_grad()
    def predict(self, images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Saliency probabilities, in eval mode and without gradients (the mode is restored).

        Args:
            images: Normalised images (N, 3, H, W).
            size: ``(H', W')`` to resize the logits to (bilinear) before the sigmoid, e.g. the
                original image size; ``None`` keeps (H, W).

        Returns:
            float32 (N, H, W) or (N, H', W') in [0, 1].
        """
        size = check_size(size)
        was_training = self.training
        self.eval()
        try:
            logits = self(images).float()
        finally:
            self.train(was_training)
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits[:, 0])

    # ------------------------------------------------------------------ training
    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Parameter groups for ``torch.optim.SGD``: backbone at ``lr``, decoder at ``head_lr_mult``.

        Biases and other one-dimensional parameters (normalisation scales) get no weight decay.
        Each group carries ``name`` and ``lr_mult`` for learning-rate schedules; frozen
        parameters and empty groups are left out.

        Args:
            lr: Base learning rate.
            weight_decay: Weight decay of the multi-dimensional weights.

        Returns:
            A list of parameter-group dicts.

        Example:
            >>> model = SaliencyNet(nn.Conv2d(3, 4, 1), decoder_channels=2)
            >>> [(g["name"], g["lr"], g["weight_decay"]) for g in model.param_groups(0.1, 1e-4)]
            [('backbone', 0.1, 0.0001), ('backbone_no_decay', 0.1, 0.0), ('decoder', 1.0, 0.0001), ('decoder_no_decay', 1.0, 0.0)]
        """  # noqa: E501
        return make_param_groups(
            self, lr, weight_decay, lambda name, _: not name.startswith("backbone."),
            names=("backbone", "decoder"), new_mult=self.head_lr_mult,
        )  # fmt: skip


@register_model(name="saliency")
def _saliency_any_backbone(pretrained: Pretrained = False, **kwargs: Any) -> SaliencyNet:
    """:class:`SaliencyNet` on the backbone given as ``backbone=``.

    Args:
        pretrained: See :class:`SaliencyNet`.
        **kwargs: :class:`SaliencyNet` arguments, ``backbone`` included.
    """
    return SaliencyNet(pretrained=pretrained, **kwargs)


@register_model
def saliency_resnet50(pretrained: Pretrained = False, **kwargs: Any) -> SaliencyNet:
    """:class:`SaliencyNet` on ResNet-50 (levels of stride 8, 16 and 32).

    Args:
        pretrained: See :class:`SaliencyNet`.
        **kwargs: Other :class:`SaliencyNet` arguments.
    """
    if "backbone" in kwargs:
        raise ValueError("this model fixes backbone='resnet50'; use SaliencyNet(...) for another")
    return SaliencyNet(backbone="resnet50", pretrained=pretrained, **kwargs)
