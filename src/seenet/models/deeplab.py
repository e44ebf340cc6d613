"""DeepLab-LargeFOV: the segmentation network trained on proxy ground truth.

The VGG16 version is DeepLab-LargeFOV as its Caffe prototxt defines it (SPEC item 11): VGG16's
convolutions with pool4 and pool5 at stride 1 and conv5 dilated by 2 (output stride 8), then a
dilated classifier fc6 (3×3, 1024 channels, dilation 12), fc7 (1×1, 1024) and fc8 (1×1, classes).
Other backbones are timm models run at ``output_stride=8`` with the same classifier; the
ResNet-101 one is the paper's second segmentation network.

:func:`segment` is the test protocol: multi-scale, horizontally flipped inference whose class
probabilities are averaged at full resolution.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._io import load_state_dict_file
from ._param_groups import make_param_groups
from ._pretrained import hub_state_dict, load_checked
from ._registry import register_model
from .backbones import TimmBackbone, load_backbone_weights

__all__ = [
    "DeepLabLargeFOV",
    "LargeFOVClassifier",
    "segment",
    "vgg16_to_largefov",
    "deeplab_largefov_vgg16",
    "deeplab_largefov_resnet101",
]

Pretrained = Union[bool, str, os.PathLike]

# conv layers of VGG16 at their index in timm's / torchvision's ``features`` Sequential
_VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
#: fc6/fc7 decimation (SPEC item 11): every 4th unit, fc6's 7×7 taps at positions 0, 3, 6.
_UNIT_STEP = 4
_TAPS = (0, 3, 6)


def _vgg16_largefov_features() -> nn.Sequential:
    """VGG16's convolutions as DeepLab-LargeFOV runs them, indexed like timm's ``features``."""
    layers: list[nn.Module] = []
    in_ch = 3
    for stage, (out_ch, n) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        dilation = 2 if stage == 4 else 1
        for _ in range(n):
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation),
                nn.ReLU(inplace=True),
            ]
            in_ch = out_ch
        # pool1-3 halve the size (ceil(H / 2)); pool4 and pool5 keep it
        layers.append(nn.MaxPool2d(3, stride=2 if stage < 3 else 1, padding=1))
    layers.append(nn.AvgPool2d(3, stride=1, padding=1))  # pool5a
    return nn.Sequential(*layers)


class LargeFOVClassifier(nn.Sequential):
    """DeepLab-LargeFOV's dilated classifier: fc6 (3×3, dilation 12), fc7 (1×1), fc8 (1×1).

    Args:
        in_channels: Channels of the backbone features.
        num_classes: Output classes (background included).
        hidden_channels: Width of fc6 and fc7 (DeepLab-LargeFOV: 1024).
        dilation: fc6's dilation (DeepLab-LargeFOV: 12).
        dropout: Dropout after fc6 and fc7 (DeepLab: 0.5).

    Example:
        >>> head = LargeFOVClassifier(8, 3, hidden_channels=4)
        >>> head(torch.randn(1, 8, 5, 5)).shape
        torch.Size([1, 3, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int = 21,
        hidden_channels: int = 1024,
        dilation: int = 12,
        dropout: float = 0.5,
        feature_index: int | None = None,
    ) -> None:
        super().__init__(
            OrderedDict(
                fc6=nn.Conv2d(in_channels, hidden_channels, 3, padding=dilation, dilation=dilation),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(dropout),
                fc7=nn.Conv2d(hidden_channels, hidden_channels, 1),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(dropout),
                fc8=nn.Conv2d(hidden_channels, num_classes, 1),
            )
        )
        for layer in (self.fc6, self.fc7):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        # DeepLab's fc8 initialisation: Gaussian with std 0.01, zero bias
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)


def vgg16_to_largefov(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert ImageNet VGG16 weights to DeepLab-LargeFOV's, as DeepLab does.

    The 13 convolutions are copied. fc6 and fc7 are *decimated* from VGG16's fully connected
    layers, which are convolutions over pool5's 7×7 grid:

    * fc6 (4096 × 512 × 7 × 7) keeps every 4th output unit (0, 4, ..., 4092) and the taps at
      positions 0, 3 and 6 of each spatial axis: decimation by 3 keeps the two outer taps and the
      centre, so the 3×3 kernel still spans the 7×7 kernel's extent (DeepLab's "subsampling by
      decimation"; the dilation of 12 spreads the taps over a large field of view).
    * fc7 (4096 × 4096) keeps every 4th output unit and every 4th input unit, matching fc6's
      kept units.

    fc8 and VGG16's 1000-way classifier are not used.

    Args:
        state_dict: timm's ``vgg16`` state dict (``features.*``, ``pre_logits.fc1/fc2``), or
            torchvision's (``features.*``, ``classifier.0/3`` as linear layers).

    Returns:
        The weights of ``backbone.*`` (the convolutions), ``classifier.fc6.*`` and
        ``classifier.fc7.*`` of :class:`DeepLabLargeFOV` with the VGG16 backbone.

    Raises:
        ValueError: If a VGG16 tensor is missing or has another shape.
    """
    sd = dict(state_dict)
    if "pre_logits.fc1.weight" in sd:  # timm
        fc6_w, fc6_b = sd["pre_logits.fc1.weight"], sd.get("pre_logits.fc1.bias")
        fc7_w, fc7_b = sd.get("pre_logits.fc2.weight"), sd.get("pre_logits.fc2.bias")
        names = "pre_logits.fc1 / pre_logits.fc2"
    elif "classifier.0.weight" in sd:  # torchvision
        fc6_w, fc6_b = sd["classifier.0.weight"], sd.get("classifier.0.bias")
        fc7_w, fc7_b = sd.get("classifier.3.weight"), sd.get("classifier.3.bias")
        names = "classifier.0 / classifier.3"
    else:
        raise ValueError(
            "state_dict must be VGG16 weights (timm's 'pre_logits.fc1.weight' or torchvision's "
            f"'classifier.0.weight'); found keys {sorted(sd)[:8]}..."
        )
    if fc6_b is None or fc7_w is None or fc7_b is None:
        raise ValueError(f"state_dict lacks VGG16's fully connected layers ({names})")
    fc6_w = fc6_w.reshape(4096, 512, 7, 7) if fc6_w.numel() == 4096 * 512 * 49 else fc6_w
    fc7_w = fc7_w.reshape(4096, 4096, 1, 1) if fc7_w.numel() == 4096 * 4096 else fc7_w
    for name, t, shape in (
        ("fc6 weight", fc6_w, (4096, 512, 7, 7)),
        ("fc6 bias", fc6_b, (4096,)),
        ("fc7 weight", fc7_w, (4096, 4096, 1, 1)),
        ("fc7 bias", fc7_b, (4096,)),
    ):
        if tuple(t.shape) != shape:
            raise ValueError(f"VGG16 {name} must have shape {shape}, got {tuple(t.shape)}")

    out: dict[str, torch.Tensor] = {}
    for i in _VGG16_CONVS:
        for kind in ("weight", "bias"):
            key = f"features.{i}.{kind}"
            if key not in sd:
                raise ValueError(f"state_dict lacks VGG16's {key}")
            out[f"backbone.{i}.{kind}"] = sd[key].clone()
    units = slice(None, None, _UNIT_STEP)
    taps = torch.tensor(_TAPS)
    out["classifier.fc6.weight"] = (
        fc6_w[units].index_select(2, taps).index_select(3, taps).contiguous().clone()
    )
    out["classifier.fc6.bias"] = fc6_b[units].clone()
    out["classifier.fc7.weight"] = fc7_w[units, units].contiguous().clone()
    out["classifier.fc7.bias"] = fc7_b[units].clone()
    return out


def _classifier_prefixes(model_name: str) -> tuple[str, ...]:
    """The key prefixes of a timm model's classification head (absent from feature models)."""
    import timm

    cfg = timm.models.get_pretrained_cfg(model_name)
    head = getattr(cfg, "classifier", None) if cfg is not None else None
    if head is None:
        return ()
    heads = (head,) if isinstance(head, str) else tuple(head)
    return tuple(f"{h}." for h in heads)


class DeepLabLargeFOV(nn.Module):
    r"""DeepLab-LargeFOV with a VGG16 backbone (exactly the Caffe network) or any timm backbone.

    With ``backbone="vgg16"`` the network is DeepLab-LargeFOV of SPEC item 11: 20,505,429
    parameters with 21 classes and logits of size ⌈H/8⌉ × ⌈W/8⌉ (321 → 41). Any other name is a
    timm model created with ``features_only=True, output_stride=8`` (``"resnet101"`` is the
    paper's ResNet version) under the same dilated classifier.

    Args:
        num_classes: Output classes, background included (VOC: 21).
        backbone: ``"vgg16"`` or a timm model name that supports ``output_stride=8``.
        pretrained: ``False``; ``True`` for ImageNet weights from timm's hub (for VGG16 converted
            as DeepLab does, see :func:`vgg16_to_largefov`); or the path of a local file holding
            either the ImageNet weights of the backbone (timm's state dict of ``backbone``; for
            VGG16 converted the same way) or a whole :class:`DeepLabLargeFOV` checkpoint
            (recognised by its ``classifier.fc8`` keys).
        hidden_channels: Width of fc6 and fc7 (1024).
        dilation: Dilation of fc6 (12).
        dropout: Dropout after fc6 and fc7 (0.5).
        feature_index: For a timm backbone, the feature level the classifier reads. ``None``
            (DeepLab): the deepest level, its later stages dilated to keep output stride 8.
            An index (negative counts from the deepest level) whose stride is 8 taps that level
            and drops the stages after it: much cheaper, with a shallower feature (a choice of
            ours for the built-in demo on a CPU, not DeepLab's network).

    Shape:
        - input: :math:`(N, 3, H, W)`
        - output: :math:`(N, \text{num\_classes}, \lceil H/8 \rceil, \lceil W/8 \rceil)`

    Example:
        >>> model = DeepLabLargeFOV(num_classes=3, backbone="resnet18").eval()
        >>> model(torch.randn(1, 3, 33, 40)).shape
        torch.Size([1, 3, 5, 5])
    """

    def __init__(
        self,
        num_classes: int = 21,
        backbone: str = "vgg16",
        pretrained: Pretrained = False,
        hidden_channels: int = 1024,
        dilation: int = 12,
        dropout: float = 0.5,
        feature_index: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if not isinstance(backbone, str):
            raise ValueError(f"backbone must be 'vgg16' or a timm model name, got {backbone!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.num_classes = num_classes
        self.backbone_name = backbone
        self.feature_index = feature_index
        if backbone == "vgg16":
            if feature_index is not None:
                raise ValueError(
                    f"feature_index applies to timm backbones only, got {feature_index!r} "
                    "with backbone='vgg16'"
                )
            self.backbone: nn.Module = _vgg16_largefov_features()
            in_channels = 512
        elif feature_index is not None:
            import timm

            if not timm.is_model(backbone):
                raise ValueError(f"backbone must be 'vgg16' or a timm model name, got {backbone!r}")
            self.backbone = TimmBackbone(backbone, feature_index, output_stride=8)
            if self.backbone.reduction != 8:
                raise ValueError(
                    f"feature_index {feature_index} of {backbone!r} has stride "
                    f"{self.backbone.reduction}; DeepLab-LargeFOV needs a level of stride 8"
                )
            in_channels = self.backbone.out_channels
        else:
            import timm

            if not timm.is_model(backbone):
                raise ValueError(f"backbone must be 'vgg16' or a timm model name, got {backbone!r}")
            try:
                self.backbone = timm.create_model(
                    backbone, pretrained=False, features_only=True, output_stride=8,
                    out_indices=(-1,),
                )  # fmt: skip
            except (TypeError, ValueError, RuntimeError, AssertionError) as e:
                raise ValueError(
                    f"backbone {backbone!r} cannot run as a feature extractor at output_stride=8 "
                    f"({type(e).__name__}: {e})"
                ) from None
            reduction = self.backbone.feature_info.reduction()[-1]
            if reduction != 8:
                raise ValueError(
                    f"backbone {backbone!r} does not support output_stride=8 (its deepest "
                    f"features have stride {reduction})"
                )
            in_channels = self.backbone.feature_info.channels()[-1]
        self.classifier = LargeFOVClassifier(
            in_channels, num_classes, hidden_channels, dilation, dropout
        )
        self._load_pretrained(pretrained)

    # ------------------------------------------------------------------ weights

    def _load_pretrained(self, pretrained: Pretrained) -> None:
        if pretrained is False or pretrained is None:
            return
        if pretrained is True:
            sd = hub_state_dict(self.backbone_name)
            self.load_imagenet(sd, what=f"timm's ImageNet weights of {self.backbone_name!r}")
            return
        if not isinstance(pretrained, (str, os.PathLike)):
            raise ValueError(f"pretrained must be False, True or a file path, got {pretrained!r}")
        sd = load_state_dict_file(pretrained)
        if sd and all(k.startswith("module.") for k in sd):  # saved from DDP
            sd = {k[len("module.") :]: v for k, v in sd.items()}
        if any(k.startswith("classifier.fc8.") for k in sd):
            load_checked(self, sd, f"DeepLabLargeFOV checkpoint {os.fspath(pretrained)!r}")
        else:
            self.load_imagenet(
                sd, what=f"ImageNet weights of {self.backbone_name!r} in {os.fspath(pretrained)!r}"
            )

    def load_imagenet(self, state_dict: Mapping[str, torch.Tensor], what: str = "weights") -> None:
        """Initialise from the ImageNet classifier's weights, as DeepLab does.

        VGG16: convolutions copied, fc6/fc7 decimated (:func:`vgg16_to_largefov`); fc8 keeps its
        random initialisation. Other backbones: the timm model's weights without its
        classification head go into :attr:`backbone`; the classifier stays random.

        Args:
            state_dict: The timm (or, for VGG16, torchvision) state dict of the backbone model.
            what: Words for the weights in error messages.

        Raises:
            ValueError: If the weights do not fit (the message lists the keys).
        """
        if self.backbone_name == "vgg16":
            try:
                converted = vgg16_to_largefov(state_dict)
            except ValueError as e:
                raise ValueError(f"{what}: {e}") from None
            own = self.state_dict()
            converted.update({k: own[k] for k in own if k.startswith("classifier.fc8.")})
            load_checked(self, converted, what)
            return
        if isinstance(self.backbone, TimmBackbone):
            load_backbone_weights(self.backbone, state_dict, what)
            return
        prefixes = _classifier_prefixes(self.backbone_name)
        own_keys = set(self.backbone.state_dict())
        sd = {
            k: v for k, v in state_dict.items() if k in own_keys or not k.startswith(prefixes or ())
        }
        load_checked(self.backbone, sd, what)

    # ------------------------------------------------------------------ training

    def new_modules(self) -> list[nn.Module]:
        """Layers not initialised from ImageNet: fc8 for VGG16, the whole classifier otherwise."""
        if self.backbone_name == "vgg16":
            return [self.classifier.fc8]
        return [self.classifier]

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Parameter groups for ``torch.optim.SGD`` with DeepLab's conventions.

        Layers initialised from ImageNet train at ``lr``, new layers (:meth:`new_modules`) at
        ``10·lr`` (SPEC: "classifier 10×"); biases and other one-dimensional parameters
        (normalisation scales) get no weight decay. Each group carries ``name`` and ``lr_mult``
        (1 or 10) for learning-rate schedules; frozen parameters and empty groups are left out.

        Args:
            lr: Base learning rate (DeepLab: 1e-3).
            weight_decay: Weight decay of the multi-dimensional weights (DeepLab: 5e-4).

        Returns:
            Up to four groups named ``pretrained``, ``pretrained_no_decay``, ``new`` and
            ``new_no_decay``.

        Example:
            >>> model = DeepLabLargeFOV(num_classes=3, backbone="resnet18")
            >>> groups = model.param_groups(lr=1e-3, weight_decay=5e-4)
            >>> for g in groups:
            ...     print(g["name"], g["lr"], g["lr_mult"], g["weight_decay"])
            pretrained 0.001 1.0 0.0005
            pretrained_no_decay 0.001 1.0 0.0
            new 0.01 10.0 0.0005
            new_no_decay 0.01 10.0 0.0
        """
        new_ids = {id(p) for m in self.new_modules() for p in m.parameters()}
        return make_param_groups(self, lr, weight_decay, lambda _, p: id(p) in new_ids)

    # ------------------------------------------------------------------ forward

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits at output stride 8.

        Args:
            images: Normalised images ``(N, 3, H, W)``.

        Returns:
            Logits ``(N, num_classes, ceil(H / 8), ceil(W / 8))``.
        """
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"images must have shape (N, 3, H, W), got {shape}")
        features = self.backbone(images)
        if isinstance(features, (list, tuple)):
            features = features[-1]
        return self.classifier(features)


@torch.no_grad()
def segment(
    model: nn.Module,
    image: torch.Tensor,
    scales: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5),
    flip: bool = True,
) -> torch.Tensor:
    """Multi-scale, flipped inference: class probabilities averaged at full resolution.

    For every scale the image is resized (bilinear), the model's logits are resized back to the
    image size (bilinear) and turned into probabilities (softmax); with ``flip`` the horizontally
    flipped image is also run and its output flipped back. The result is the mean of these
    probability maps. The model runs in eval mode without gradients; its mode is restored.

    Args:
        model: A segmentation model returning logits ``(N, K, h, w)``, e.g.
            :class:`DeepLabLargeFOV`.
        image: A normalised image ``(3, H, W)`` or a batch ``(N, 3, H, W)``.
        scales: Resize factors (paper's protocol: 0.5 to 1.5).
        flip: Also average the horizontally flipped image.

    Returns:
        Probabilities ``(K, H, W)`` or ``(N, K, H, W)`` that sum to 1 over classes.

    Example:
        >>> model = torch.nn.Conv2d(3, 4, 1)
        >>> probs = segment(model, torch.randn(3, 10, 12), scales=(0.5, 1.0))
        >>> probs.shape, bool(torch.allclose(probs.sum(0), torch.ones(10, 12)))
        (torch.Size([4, 10, 12]), True)
    """
    if not isinstance(image, torch.Tensor) or image.ndim not in (3, 4) or image.shape[-3] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must have shape (3, H, W) or (N, 3, H, W), got {shape}")
    scales = tuple(scales)
    if not scales or any(
        isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0 for s in scales
    ):
        raise ValueError(f"scales must be a non-empty sequence of positive numbers, got {scales}")
    single = image.ndim == 3
    x = image[None] if single else image
    h, w = x.shape[-2:]
    was_training = model.training
    model.eval()
    try:
        total: torch.Tensor | None = None
        count = 0
        for s in scales:
            size = (max(1, round(h * s)), max(1, round(w * s)))
            xs = x if size == (h, w) else F.interpolate(
                x, size=size, mode="bilinear", align_corners=False
            )
            for flipped in (False, True) if flip else (False,):
                logits = model(xs.flip(-1) if flipped else xs)
                if flipped:
                    logits = logits.flip(-1)
                logits = F.interpolate(
                    logits.float(), size=(h, w), mode="bilinear", align_corners=False
                )
                probs = logits.softmax(dim=1)
                total = probs if total is None else total.add_(probs)
                count += 1
    finally:
        model.train(was_training)
    assert total is not None
    total.div_(count)
    return total[0] if single else total


@register_model(name="deeplab_largefov")
def _deeplab_any_backbone(pretrained: Pretrained = False, **kwargs: Any) -> DeepLabLargeFOV:
    """:class:`DeepLabLargeFOV` on the backbone given as ``backbone=``.

    Args:
        pretrained: See :class:`DeepLabLargeFOV`.
        **kwargs: :class:`DeepLabLargeFOV` arguments, ``backbone`` included.
    """
    return DeepLabLargeFOV(pretrained=pretrained, **kwargs)


@register_model
def deeplab_largefov_vgg16(pretrained: Pretrained = False, **kwargs: Any) -> DeepLabLargeFOV:
    """DeepLab-LargeFOV with VGG16 (SPEC item 11); ``pretrained=True`` converts timm's VGG16.

    Example:
        >>> model = deeplab_largefov_vgg16()
        >>> sum(p.numel() for p in model.parameters())
        20505429
    """
    return DeepLabLargeFOV(backbone="vgg16", pretrained=pretrained, **kwargs)


@register_model
def deeplab_largefov_resnet101(pretrained: Pretrained = False, **kwargs: Any) -> DeepLabLargeFOV:
    """DeepLab-LargeFOV with ResNet-101 at output stride 8, the paper's ResNet version."""
    return DeepLabLargeFOV(backbone="resnet101", pretrained=pretrained, **kwargs)
