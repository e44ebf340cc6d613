"""Backbones for SeeNet: any timm model (``features_only``) or any ``nn.Module``.

A backbone maps images (N, 3, H, W) to one feature map (N, C, h, w). :func:`create_backbone`
turns a timm model name into a :class:`TimmBackbone` that returns a single feature level, or
wraps a plain module after one dry run to learn its channel count. Models that read several
levels (the saliency network) use :class:`TimmFeaturePyramid`, or a plain module returning a
list of feature maps (:func:`infer_feature_levels`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from .._io import load_state_dict_file
from ._pretrained import hub_state_dict, load_checked

__all__ = [
    "TimmBackbone",
    "TimmFeaturePyramid",
    "create_backbone",
    "default_feature_index",
    "default_feature_indices",
    "infer_feature_levels",
    "infer_out_channels",
    "load_backbone_weights",
    "load_pretrained_weights",
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


def _feature_levels(
    model_name: object, timm_kwargs: Mapping[str, Any]
) -> tuple[list[int], list[int]]:
    """Check a timm name and its extra arguments; the strides and channels of its feature levels."""
    import timm

    if not isinstance(model_name, str) or not timm.is_model(model_name):
        raise ValueError(f"backbone must be a timm model name or an nn.Module, got {model_name!r}")
    for key in ("features_only", "out_indices", "pretrained"):
        if key in timm_kwargs:
            raise ValueError(f"backbone_kwargs must not set {key!r}; the model sets it")
    # one cheap instantiation on the meta device to read the feature levels
    probe = _create_on_meta(model_name, features_only=True, **timm_kwargs)
    reductions = list(probe.feature_info.reduction())
    channels = list(probe.feature_info.channels())
    del probe
    return reductions, channels


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

        reductions, channels = _feature_levels(model_name, timm_kwargs)
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


def default_feature_indices(model_name: str, reductions: list[int]) -> tuple[int, ...]:
    """The feature levels a multi-level model (e.g. the saliency network) uses by default.

    The deepest level of :func:`default_feature_index` and up to two levels before it, leaving
    out levels of stride below 4: strides 8, 16 and 32 for ResNets and EfficientNets, 4, 8 and
    16 for timm's VGG models (whose deepest level is pool5).

    Args:
        model_name: The timm model name.
        reductions: The strides of the model's feature levels, shallow to deep.

    Returns:
        Increasing indices into the feature levels (at least one).

    Example:
        >>> default_feature_indices("resnet50", [2, 4, 8, 16, 32])
        (2, 3, 4)
        >>> default_feature_indices("vgg16", [1, 2, 4, 8, 16, 32])
        (2, 3, 4)
        >>> default_feature_indices("tiny", [2, 4])
        (1,)
    """
    deepest = default_feature_index(model_name, reductions)
    shallower = [i for i in (deepest - 2, deepest - 1) if i >= 0 and reductions[i] >= 4]
    return (*shallower, deepest)


def _check_indices(indices: object, n: int, what: str) -> tuple[int, ...]:
    """Feature-level indices as increasing non-negative ints (negative ones count from the end)."""
    if isinstance(indices, (str, bytes)) or not isinstance(indices, (list, tuple)) or not indices:
        raise ValueError(f"feature_indices must be a non-empty sequence of ints, got {indices!r}")
    out = []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n:
            raise ValueError(
                f"feature_indices must hold ints in [{-n}, {n - 1}] for {what} ({n} feature "
                f"levels), got {list(indices)}"
            )
        out.append(i % n)
    if out != sorted(set(out)):
        raise ValueError(
            f"feature_indices must name distinct levels from shallow to deep, got {list(indices)}"
        )
    return tuple(out)


class TimmFeaturePyramid(nn.Module):
    """A timm model created with ``features_only=True`` that returns several feature levels.

    The multi-level counterpart of :class:`TimmBackbone`; :func:`load_backbone_weights` loads
    timm's weights into both in the same way.

    Args:
        model_name: A timm model name.
        feature_indices: Which feature levels, shallow to deep (``None``: see
            :func:`default_feature_indices`; negative indices count from the deepest level).
        **timm_kwargs: Passed to ``timm.create_model`` (e.g. ``output_stride=16``).

    Attributes:
        body: The timm feature extractor (only the layers up to the deepest chosen level).
        model_name: The timm name.
        feature_indices: The chosen levels, non-negative and increasing.
        out_channels: Channels of each returned level.
        reductions: Stride of each returned level relative to the input.

    Shape:
        - Input: (N, 3, H, W).
        - Output: a list of (N, out_channels[i], H / reductions[i], W / reductions[i]).

    Example:
        >>> bb = TimmFeaturePyramid("resnet18")
        >>> bb.out_channels, bb.reductions
        ([128, 256, 512], [8, 16, 32])
        >>> [tuple(f.shape) for f in bb(torch.zeros(1, 3, 64, 64))]
        [(1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    """

    def __init__(
        self,
        model_name: str,
        feature_indices: Sequence[int] | None = None,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        reductions, channels = _feature_levels(model_name, timm_kwargs)
        if feature_indices is None:
            indices = default_feature_indices(model_name, reductions)
        else:
            indices = _check_indices(feature_indices, len(reductions), repr(model_name))
        self.model_name = model_name
        self.feature_indices = indices
        self.out_channels = [channels[i] for i in indices]
        self.reductions = [reductions[i] for i in indices]
        self.timm_kwargs = dict(timm_kwargs)
        self.body = timm.create_model(
            model_name, features_only=True, out_indices=indices, **timm_kwargs
        )

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """Timm's pretrained config of the model (mean, std, input size...)."""
        return dict(getattr(self.body, "pretrained_cfg", {}) or {})

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Features of the chosen levels, shallow to deep."""
        return list(self.body(images))

    def full_model_keys(self) -> dict[str, torch.Size]:
        """Keys and shapes of the full timm model's state dict (built on the meta device)."""
        full = _create_on_meta(self.model_name, **self.timm_kwargs)
        return {k: v.shape for k, v in full.state_dict().items()}


def infer_feature_levels(
    module: nn.Module, size: tuple[int, int] = (64, 64)
) -> tuple[list[int], list[int]]:
    """Channels and strides of the feature maps a plain multi-level backbone returns.

    One dry run as in :func:`infer_out_channels` (zeros of shape (1, 3, *size), eval mode, no
    gradients, the training flag restored). A single 4-D tensor counts as one level.

    Args:
        module: A module mapping (N, 3, H, W) images to a (N, C, h, w) tensor or a list or tuple
            of them.
        size: Spatial size of the dry-run input.

    Returns:
        ``(channels, reductions)``, one entry per level; a stride is ``size[0] // h``.

    Raises:
        ValueError: If the module returns anything else.

    Example:
        >>> class Two(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.a, self.b = nn.Conv2d(3, 4, 2, stride=2), nn.Conv2d(4, 8, 2, stride=2)
        ...     def forward(self, x):
        ...         a = self.a(x)
        ...         return [a, self.b(a)]
        >>> infer_feature_levels(Two())
        ([4, 8], [2, 4])
    """
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
    levels = [out] if isinstance(out, torch.Tensor) else out
    if (
        not isinstance(levels, (list, tuple))
        or not levels
        or not all(isinstance(f, torch.Tensor) and f.ndim == 4 for f in levels)
    ):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"backbone must return a (N, C, h, w) tensor or a list of them, got {got}")
    channels = [int(f.shape[1]) for f in levels]
    reductions = [max(1, size[0] // max(1, int(f.shape[2]))) for f in levels]
    return channels, reductions


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

    For a :class:`TimmBackbone` or :class:`TimmFeaturePyramid`, ``state_dict`` may be the full
    timm model's state dict (what ``timm.create_model(name, pretrained=True).state_dict()``
    gives: its classifier and the layers past the deepest chosen level are ignored), or the
    state dict of ``backbone.body`` or of ``backbone`` itself. Every tensor the backbone needs
    must be there with the right shape, and every key must belong to the model; otherwise a
    ``ValueError`` lists what does not fit.

    Args:
        backbone: The backbone to load into.
        state_dict: Names to tensors.
        what: Words for the weights in error messages.

    Raises:
        ValueError: If the weights do not fit.
    """
    if not isinstance(backbone, (TimmBackbone, TimmFeaturePyramid)):
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


def load_pretrained_weights(
    model: nn.Module,
    pretrained: bool | str | os.PathLike,
    model_prefixes: tuple[str, ...],
    what: str,
) -> None:
    """Load the ``pretrained`` argument of a model whose feature extractor is ``model.backbone``.

    ``True`` loads timm's ImageNet weights of a :class:`TimmBackbone` or
    :class:`TimmFeaturePyramid` (:func:`~seenet.models._pretrained.hub_state_dict`: offline it
    fails within seconds and says how to pass a file). A path is read with
    :func:`seenet._io.load_state_dict_file`; a state dict with a key under one of
    ``model_prefixes`` is a whole-model checkpoint (``save_pretrained``) and is loaded strictly
    into ``model``; otherwise it holds backbone weights (``backbone.*`` keys, or timm's keys) and
    goes through :func:`load_backbone_weights`.

    Args:
        model: The model, with a ``backbone`` attribute.
        pretrained: ``True`` or the path of a weights file.
        model_prefixes: Key prefixes that only a whole-model checkpoint has (its new layers).
        what: The model's name in error messages, e.g. ``"SaliencyNet"``.

    Raises:
        ValueError: If the weights do not fit (the message lists the keys), or ``True`` is asked
            for a module backbone.
        RuntimeError: If timm's weights cannot be downloaded.
        FileNotFoundError: If the file does not exist.
    """
    backbone = model.backbone
    if not isinstance(backbone, nn.Module):  # pragma: no cover - the models always have one
        raise ValueError(f"{what} has no backbone module")
    if pretrained is True:
        if not isinstance(backbone, (TimmBackbone, TimmFeaturePyramid)):
            raise ValueError(
                "pretrained=True needs a timm backbone name; for a module backbone pass the "
                "path of a weights file"
            )
        name = backbone.model_name
        load_backbone_weights(backbone, hub_state_dict(name), f"timm's weights of {name!r}")
        return
    if isinstance(pretrained, bool) or not isinstance(pretrained, (str, os.PathLike)):
        raise ValueError(
            f"pretrained must be True or the path of a weights file, got {pretrained!r}"
        )
    state_dict = load_state_dict_file(pretrained)
    if state_dict and all(k.startswith("module.") for k in state_dict):  # saved from DDP
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    if any(k.startswith(model_prefixes) for k in state_dict):
        load_checked(model, state_dict, f"{what} checkpoint {os.fspath(pretrained)!r}")
        return
    if state_dict and all(k.startswith("backbone.") for k in state_dict):
        state_dict = {k[len("backbone.") :]: v for k, v in state_dict.items()}
    load_backbone_weights(backbone, state_dict, f"backbone weights {os.fspath(pretrained)!r}")


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
