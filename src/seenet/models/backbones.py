"""Backbones for SeeNet: any timm model (``features_only``) or any ``nn.Module``.

A backbone maps images (N, 3, H, W) to one feature map (N, C, h, w). :func:`create_backbone`
turns a timm model name into a :class:`TimmBackbone` that returns a single feature level, or
wraps a plain module after one dry run to learn its channel count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from ._pretrained import load_checked

__all__ = [
    "TimmBackbone",
    "create_backbone",
    "default_feature_index",
    "infer_out_channels",
    "load_backbone_weights",
]


def default_feature_index(model_name: str, reductions: list[int]) -> int:
    """The feature level SeeNet uses when ``feature_index`` is ``None``.

    The deepest level, except for timm's VGG models: their deepest level comes after pool5
    (stride 32), while the authors' SeeNet taps conv5_3 (after its ReLU, stride 16), which is
    the level before it.

    Args:
        model_name: The timm model name (a pretrained tag such as ``".tv_in1k"`` is allowed).
        reductions: The strides of the model's feature levels, shallow to deep.

    Returns:
        An index into the feature levels.

    Example:
        >>> default_feature_index("vgg16", [1, 2, 4, 8, 16, 32])
        4
        >>> default_feature_index("resnet50", [2, 4, 8, 16, 32])
        4
    """
    arch = model_name.split(".")[0]
    if arch.startswith("vgg") and len(reductions) >= 2 and reductions[-1] == 2 * reductions[-2]:
        return len(reductions) - 2
    return len(reductions) - 1


def _create_on_meta(model_name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` on the meta device (no memory, no init), on the CPU if that fails.

    A few models compute Python numbers from tensors while they are built, which the meta
    device cannot do.
    """
    import timm

    try:
        with torch.device("meta"):
            return timm.create_model(model_name, **kwargs)
    except (RuntimeError, NotImplementedError):
        return timm.create_model(model_name, **kwargs)


class TimmBackbone(nn.Module):
    """A timm model created with ``features_only=True`` that returns one feature level.

    Args:
        model_name: A timm model name.
        feature_index: Which feature level (``None``: see :func:`default_feature_index`;
            negative indices count from the deepest level).
        **timm_kwargs: Passed to ``timm.create_model`` (e.g. ``output_stride=16``).

    Attributes:
        body: The timm feature extractor (only the layers up to the chosen level).
        model_name: The timm name.
        feature_index: The chosen level, non-negative.
        out_channels: Channels of the returned features.
        reduction: Stride of the returned features relative to the input.

    Shape:
        - Input: (N, 3, H, W).
        - Output: (N, out_channels, H / reduction, W / reduction) (rounded as the model does).

    Example:
        >>> bb = TimmBackbone("resnet18")
        >>> bb.out_channels, bb.reduction
        (512, 32)
        >>> bb(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 512, 2, 2])
    """

    def __init__(self, model_name: str, feature_index: int | None = None, **timm_kwargs: Any):
        super().__init__()
        import timm

        if not isinstance(model_name, str) or not timm.is_model(model_name):
            raise ValueError(
                f"backbone must be a timm model name or an nn.Module, got {model_name!r}"
            )
        for key in ("features_only", "out_indices", "pretrained"):
            if key in timm_kwargs:
                raise ValueError(f"backbone_kwargs must not set {key!r}; SeeNet sets it")
        # one cheap instantiation on the meta device to read the feature levels
        probe = _create_on_meta(model_name, features_only=True, **timm_kwargs)
        reductions = list(probe.feature_info.reduction())
        channels = list(probe.feature_info.channels())
        del probe
        n = len(reductions)
        if feature_index is None:
            index = default_feature_index(model_name, reductions)
        else:
            if isinstance(feature_index, bool) or not isinstance(feature_index, int):
                raise ValueError(f"feature_index must be an int or None, got {feature_index!r}")
            if not -n <= feature_index < n:
                raise ValueError(
                    f"feature_index must be in [{-n}, {n - 1}] for {model_name!r} "
                    f"({n} feature levels with strides {reductions}), got {feature_index}"
                )
            index = feature_index % n
        self.model_name = model_name
        self.feature_index = index
        self.out_channels = channels[index]
        self.reduction = reductions[index]
        self.timm_kwargs = dict(timm_kwargs)
        self.body = timm.create_model(
            model_name, features_only=True, out_indices=(index,), **timm_kwargs
        )

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """Timm's pretrained config of the model (mean, std, input size...)."""
        return dict(getattr(self.body, "pretrained_cfg", {}) or {})

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features of the chosen level."""
        out = self.body(images)
        return out[0] if isinstance(out, (list, tuple)) else out

    def full_model_keys(self) -> dict[str, torch.Size]:
        """Keys and shapes of the full timm model's state dict (built on the meta device)."""
        full = _create_on_meta(self.model_name, **self.timm_kwargs)
        return {k: v.shape for k, v in full.state_dict().items()}


def _candidates(key: str) -> list[str]:
    """Full-model names a ``features_only`` key may come from.

    timm flattens the first level of ``nn.Sequential`` children into names joined by ``_``
    (``features.0.weight`` becomes ``features_0.weight``); the key itself comes first.
    """
    head, sep, rest = key.partition(".")
    out = [key]
    for i, ch in enumerate(head):
        if ch == "_" and 0 < i < len(head) - 1:
            out.append(head[:i] + "." + head[i + 1 :] + sep + rest)
    return out


def load_backbone_weights(
    backbone: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str
) -> None:
    """Load backbone weights, strictly, into a :class:`TimmBackbone` or a plain module.

    For a :class:`TimmBackbone`, ``state_dict`` may be the full timm model's state dict (what
    ``timm.create_model(name, pretrained=True).state_dict()`` gives: its classifier and the
    layers past the chosen level are ignored), or the state dict of ``backbone.body`` or of
    ``backbone`` itself. Every tensor the backbone needs must be there with the right shape,
    and every key must belong to the model; otherwise a ``ValueError`` lists what does not fit.

    Args:
        backbone: The backbone to load into.
        state_dict: Names to tensors.
        what: Words for the weights in error messages.

    Raises:
        ValueError: If the weights do not fit.
    """
    if not isinstance(backbone, TimmBackbone):
        load_checked(backbone, state_dict, what)
        return
    own = backbone.body.state_dict()
    sd = dict(state_dict)
    if all(k.startswith("body.") for k in sd):
        sd = {k[len("body.") :]: v for k, v in sd.items()}
    if set(sd) == set(own):
        load_checked(backbone.body, sd, what)
        return
    full_keys = backbone.full_model_keys()
    mapped: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key in own:
        for cand in _candidates(key):
            if cand in sd:
                mapped[key] = sd[cand]
                used.add(cand)
                break
    unexpected = [k for k in sd if k not in used and k not in full_keys]
    if unexpected:
        extra = {k: sd[k] for k in unexpected}
        # report unknown keys together with anything else that is wrong
        mapped.update(extra)
    load_checked(backbone.body, mapped, what)


def infer_out_channels(module: nn.Module, size: tuple[int, int] = (64, 64)) -> int:
    """Channels of a plain backbone's output, from ``module.out_channels`` or one dry run.

    The dry run feeds zeros of shape (1, 3, *size) in eval mode without gradients, on the
    module's device and dtype, and restores the training flag afterwards.

    Args:
        module: A module mapping (N, 3, H, W) images to (N, C, h, w) features.
        size: Spatial size of the dry-run input.

    Returns:
        C.

    Raises:
        ValueError: If the module does not return a 4-D tensor.

    Example:
        >>> infer_out_channels(nn.Conv2d(3, 8, 3, stride=2))
        8
    """
    declared = getattr(module, "out_channels", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    param = next(iter(module.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, 3, *size, device=device, dtype=dtype))
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"backbone must return a (N, C, h, w) tensor, got {got}")
    return int(out.shape[1])


def create_backbone(
    backbone: str | nn.Module,
    feature_index: int | None = None,
    backbone_kwargs: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, int]:
    """Make a backbone from a timm name or take a module as it is.

    Args:
        backbone: A timm model name or an ``nn.Module`` returning (N, C, h, w) features.
        feature_index: Feature level for a timm name (see :class:`TimmBackbone`); must be
            ``None`` for a module.
        backbone_kwargs: Extra ``timm.create_model`` arguments (timm names only).

    Returns:
        ``(module, out_channels)``.

    Raises:
        ValueError: For an unknown name, a bad index, or a module that does not return 4-D
            features.

    Example:
        >>> module, channels = create_backbone(nn.Conv2d(3, 4, 1))
        >>> channels
        4
    """
    if isinstance(backbone, str):
        bb = TimmBackbone(backbone, feature_index, **dict(backbone_kwargs or {}))
        return bb, bb.out_channels
    if isinstance(backbone, nn.Module):
        if feature_index is not None:
            raise ValueError("feature_index applies to timm backbones only; got a module")
        if backbone_kwargs:
            raise ValueError("backbone_kwargs applies to timm backbones only; got a module")
        return backbone, infer_out_channels(backbone)
    raise ValueError(
        f"backbone must be a timm model name or an nn.Module, got {type(backbone).__name__}"
    )
