"""Class attention maps from any classifier: CAM, Grad-CAM, and adapters for torchcam and grad-cam.

An *extractor* is any callable ``extractor(images, labels) -> maps`` that returns raw maps
``(N, K, h, w)`` for the classes of the multi-hot ``labels`` ``(N, K)`` and zeros for the others:

* :class:`CAM` (Zhou et al., 2016) for a classifier that ends in global average pooling and a
  linear layer: ``M_c = sum_k w[c, k] A_k`` from the features ``A`` of ``target_layer``;
* :class:`GradCAM` (Selvaraju et al., 2017): ``relu(sum_k alpha_k A_k)`` with ``alpha_k`` the
  spatial mean of the gradient of the class score with respect to ``A_k``;
* :func:`from_torchcam` and :func:`from_pytorch_grad_cam` wrap the extractors of the torchcam
  and grad-cam (``pytorch_grad_cam``) packages (``pip install 'seenet[cam]'``).

:func:`class_maps` turns the raw maps of any extractor into maps in [0, 1] with the conventions
of :meth:`seenet.SeeNet.attention_maps`, so that the maps of a plain classifier can be
stored, scored and turned into proxy labels exactly as SeeNet's are.

The hooks of :class:`CAM` and :class:`GradCAM` exist only during a call (they are removed even
when the model raises); neither changes the model's train/eval mode (call ``model.eval()``
first: in train mode batch normalisation couples the images of a batch, and dropout is random)
nor leaves gradients in its parameters.

Example:
    >>> import torch, torch.nn as nn
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
    ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    >>> images, labels = torch.randn(2, 3, 16, 16), torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0]])
    >>> raw = CAM(model, target_layer="1")(images, labels)
    >>> raw.shape
    torch.Size([2, 4, 16, 16])
    >>> maps = class_maps(GradCAM(model, model[1]), images, labels, size=(32, 32))
    >>> maps.shape, maps.dtype, bool(maps[0, 1].eq(0).all())
    (torch.Size([2, 4, 32, 32]), torch.float32, True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_tensor
from .models.seenet import _normalize_maps

__all__ = [
    "MapExtractor",
    "CAM",
    "GradCAM",
    "class_maps",
    "from_torchcam",
    "from_pytorch_grad_cam",
    "make_extractor",
]

#: ``extractor(images (N, C, H, W), labels (N, K)) -> raw maps (N, K, h, w)``.
MapExtractor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- helpers


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _resolve_module(model: nn.Module, layer: object, name: str) -> nn.Module:
    """A submodule of ``model`` given as a module or as its dotted name."""
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n]
            hint = ", ".join(names[-5:])
            raise ValueError(
                f"{name} {layer!r} is not a submodule of the model (its last ones: {hint})"
            ) from None
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError(f"{name} must be a submodule of the model, got a module outside it")
        return layer
    raise ValueError(
        f"{name} must be a submodule of the model or its dotted name, got {type(layer).__name__}"
    )


def _default_fc(model: nn.Module) -> nn.Module:
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):  # timm
        fc = get_classifier()
        if isinstance(fc, (nn.Linear, nn.Conv2d)):
            return fc
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(
            "fc was not given and the model has no nn.Linear layer (nor a timm classifier): "
            "pass the classifier layer as fc"
        )
    return linears[-1]


def _fc_weight(fc: nn.Module) -> torch.Tensor:
    """The classifier's ``(K, C)`` weight (``nn.Linear`` or a 1x1 ``nn.Conv2d``)."""
    w = getattr(fc, "weight", None)
    if isinstance(fc, nn.Linear) and isinstance(w, torch.Tensor):
        return w
    if isinstance(fc, nn.Conv2d) and tuple(fc.kernel_size) == (1, 1) and fc.groups == 1:
        return fc.weight.flatten(1)
    raise ValueError(
        f"fc must be an nn.Linear or a 1x1 nn.Conv2d classifier, got {type(fc).__name__}"
    )


def _check_labels(labels: object, n: int, k: int | None = None) -> torch.Tensor:
    labels = check_tensor(labels, "labels", ("N", "K" if k is None else k))
    if labels.shape[0] != n:
        raise ValueError(
            f"labels must have one row per image: got {labels.shape[0]} rows for {n} images"
        )
    return labels


def _check_images(images: object) -> torch.Tensor:
    return check_tensor(images, "images", ("N", "C", "H", "W"))


def _features(output: object, name: str = "target_layer") -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"{name} must output (N, C, h, w) feature maps, got {got}")
    return output


class _Capture:
    """What :func:`_capture` saw: the target layer's output, and how often it ran."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None
        self.calls = 0


@contextmanager
def _capture(layer: nn.Module, differentiable: bool = False) -> Iterator[_Capture]:
    """Capture ``layer``'s output with a forward hook that exists only inside the block.

    The captured tensor is the output as it leaves the layer, whatever in-place layers do later.
    With ``differentiable`` the output is replaced by a fresh leaf that requires grad (a copy
    flows on, so in-place layers downstream still work): gradients with respect to it need
    neither the parameters nor the graph below the layer.
    """
    seen = _Capture()

    def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
        seen.calls += 1
        feats = _features(output)
        if not differentiable:
            seen.output = feats.detach().clone()  # safe from in-place layers downstream
            return None
        leaf = feats.detach().requires_grad_(True)
        seen.output = leaf
        return leaf.clone()

    handle = layer.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()
    if seen.calls != 1:
        raise ValueError(
            f"target_layer must run exactly once per forward pass, it ran {seen.calls} times"
        )


def _rounds(labels: torch.Tensor) -> list[list[int]]:
    """Per image its labelled class indices; ``rounds[r][n]``: the r-th class of image n or -1.

    One round per class of the most labelled image, so that one backward pass serves one class
    of every image.
    """
    per_image = [torch.nonzero(row != 0).flatten().tolist() for row in labels.detach().cpu()]
    depth = max((len(c) for c in per_image), default=0)
    return [[c[r] if r < len(c) else -1 for c in per_image] for r in range(depth)]


@contextmanager
def _keep_grads(model: nn.Module) -> Iterator[None]:
    """Give every parameter back the ``.grad`` it had (for libraries that call ``backward``)."""
    saved = [(p, p.grad) for p in model.parameters()]
    try:
        yield
    finally:
        for p, g in saved:
            p.grad = g


def _optional(module: str, package: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{what} needs the optional package {package!r}: pip install {package} "
            f"(or pip install 'seenet[cam]')"
        ) from e


# ----------------------------------------------------------------------------- extractors


class CAM:
    """Class activation maps (Zhou et al., CVPR 2016) of a classifier ending in GAP + linear.

    ``maps[n, c] = sum_k w[c, k] * A[n, k]``, with ``A`` the features captured at
    ``target_layer`` by a forward hook and ``w`` the classifier's weight (its bias left out, as
    in the paper, unless ``bias``). The classifier must act on the global average of ``A``.

    Args:
        model: The classifier.
        target_layer: The module whose output feeds the global pooling (e.g. ``"layer4"`` of a
            ResNet), or its dotted name.
        fc: The classifier layer (``nn.Linear`` or 1x1 ``nn.Conv2d``) or its dotted name;
            default ``model.get_classifier()`` for timm models, else the model's last
            ``nn.Linear``.
        bias: Add the classifier's bias to every pixel (then the maps average to the logits,
            as SeeNet's class activation maps do).

    Shape:
        - images: (N, C, H, W)
        - labels: (N, K), multi-hot; K the classifier's outputs
        - output: (N, K, h, w) float32, zeros for unlabelled classes; h, w the features' size

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        >>> CAM(model, "1")(torch.randn(1, 3, 8, 8), torch.tensor([[0, 1, 0]])).shape
        torch.Size([1, 3, 4, 4])
    """

    def __init__(
        self,
        model: nn.Module,
        target_layer: nn.Module | str,
        fc: nn.Module | str | None = None,
        *,
        bias: bool = False,
    ) -> None:
        self.model = _check_model(model)
        self.target_layer = _resolve_module(model, target_layer, "target_layer")
        self.fc = _default_fc(model) if fc is None else _resolve_module(model, fc, "fc")
        _fc_weight(self.fc)
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be a bool, got {bias!r}")
        if bias and getattr(self.fc, "bias", None) is None:
            raise ValueError("bias=True but the classifier layer has no bias")
        self.bias = bias

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Raw class activation maps of ``images`` for the classes of ``labels``."""
        images = _check_images(images)
        weight = _fc_weight(self.fc).detach()
        labels = _check_labels(labels, images.shape[0], weight.shape[0])
        with torch.no_grad():
            with _capture(self.target_layer) as seen:
                self.model(images)
            feats = seen.output
            assert feats is not None
            if feats.shape[1] != weight.shape[1]:
                raise ValueError(
                    f"target_layer has {feats.shape[1]} channels but fc expects "
                    f"{weight.shape[1]} inputs: choose the layer that feeds the global pooling"
                )
            maps = torch.einsum("nchw,kc->nkhw", feats.float(), weight.float())
            if self.bias:
                maps = maps + self.fc.bias.detach().float()[None, :, None, None]
            keep = (labels != 0).to(maps.device)[:, :, None, None]
            return torch.where(keep, maps, torch.zeros_like(maps))

    def __repr__(self) -> str:
        return f"CAM(fc={type(self.fc).__name__}, bias={self.bias})"


class GradCAM:
    """Grad-CAM (Selvaraju et al., ICCV 2017) at any layer of any classifier.

    ``maps[n, c] = relu(sum_k alpha[n, c, k] * A[n, k])`` with ``alpha[n, c, k]`` the spatial mean
    of ``d logits[n, c] / d A[n, k]``. One forward pass, then one backward pass per round: round
    ``r`` differentiates the sum of the ``r``-th labelled class score of every image, so a batch
    costs as many backward passes as its most labelled image has classes. The gradients are
    taken with :func:`torch.autograd.grad` with respect to a detached copy of ``A``, so frozen
    parameters work and no ``.grad`` is written. ``A`` is the layer's output as it leaves the
    layer: a copy flows on, so an in-place layer after it (``ReLU(inplace=True)`` after a
    convolution) changes neither ``A`` nor its gradient. (torchcam keeps the output tensor itself
    and so sees it after such an in-place operation: there the two differ.)

    Args:
        model: A classifier returning logits ``(N, K)``.
        target_layer: The layer (usually the last convolutional block) or its dotted name.

    Shape:
        - images: (N, C, H, W)
        - labels: (N, K), multi-hot
        - output: (N, K, h, w) float32, zeros for unlabelled classes

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        >>> GradCAM(model, "0")(torch.randn(2, 3, 8, 8), torch.tensor([[1, 1, 0], [0, 0, 1]])).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(self, model: nn.Module, target_layer: nn.Module | str) -> None:
        self.model = _check_model(model)
        self.target_layer = _resolve_module(model, target_layer, "target_layer")

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Raw Grad-CAM maps of ``images`` for the classes of ``labels``."""
        images = _check_images(images)
        labels = _check_labels(labels, images.shape[0])
        with torch.enable_grad():
            with _capture(self.target_layer, differentiable=True) as seen:
                logits = self.model(images)
            feats = seen.output
            assert feats is not None
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != tuple(labels.shape):
                got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
                raise ValueError(
                    f"the model must return logits of the labels' shape {tuple(labels.shape)}, "
                    f"got {got}"
                )
            a = feats.detach().float()
            n, _, h, w = a.shape
            out = a.new_zeros((n, labels.shape[1], h, w))
            rounds = _rounds(labels)
            for r, classes in enumerate(rounds):
                rows = [i for i, c in enumerate(classes) if c >= 0]
                cols = [classes[i] for i in rows]
                score = logits[rows, cols].sum()
                if not score.requires_grad:
                    raise ValueError("the class scores do not depend on target_layer's output")
                (grad,) = torch.autograd.grad(
                    score, feats, retain_graph=r < len(rounds) - 1, allow_unused=True
                )
                if grad is None:
                    raise ValueError("the class scores do not depend on target_layer's output")
                alpha = grad.detach().float().mean(dim=(2, 3))
                cam = torch.relu(torch.einsum("nk,nkhw->nhw", alpha[rows], a[rows]))
                out[rows, cols] = cam
        return out

    def __repr__(self) -> str:
        return f"GradCAM(target_layer={type(self.target_layer).__name__})"


# ----------------------------------------------------------------------------- adapters


def from_torchcam(extractor: Any) -> MapExtractor:
    """Wrap a torchcam extractor (``torchcam.methods.GradCAMpp(model, "layer4")``, ...).

    Each call runs ``extractor.model`` forward (with gradients enabled), then calls the extractor
    with one class index per image and the scores, unnormalised
    (``extractor(class_idx=[...], scores=scores, normalized=False)``): one round per class of the
    most labelled image, as :class:`GradCAM` does. With several target layers the maps are
    passed through ``relu``, divided by their maximum and fused by torchcam's ``fuse_cams``. The
    parameters' ``.grad`` are given back as they were (older torchcam versions call
    ``backward``). The extractor's hooks stay on the model: remove them with its
    ``remove_hooks()`` or a ``with`` block, as torchcam documents.

    Args:
        extractor: A torchcam class activation map extractor.

    Returns:
        ``maps(images, labels) -> (N, K, h, w)`` float32 raw maps, zeros for unlabelled classes,
        for :func:`class_maps`.

    Raises:
        ImportError: If torchcam is not installed.
        ValueError: If ``extractor`` does not look like a torchcam extractor.
    """
    _optional("torchcam", "torchcam", "from_torchcam")
    model = getattr(extractor, "model", None)
    if not isinstance(model, nn.Module) or not callable(extractor):
        raise ValueError(
            "extractor must be a torchcam extractor (callable, with the hooked model as .model), "
            f"got {type(extractor).__name__}"
        )

    def maps(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images = _check_images(images)
        labels = _check_labels(labels, images.shape[0])
        rounds = _rounds(labels) or [[0] * images.shape[0]]
        out: torch.Tensor | None = None
        with _keep_grads(model):
            for classes in rounds:
                with torch.enable_grad():
                    scores = model(images)
                idx = [c if c >= 0 else 0 for c in classes]
                cams = extractor(class_idx=idx, scores=scores, normalized=False)
                cams = [cams] if isinstance(cams, torch.Tensor) else list(cams)
                if len(cams) == 1:
                    cam = cams[0].detach().float()
                else:
                    cam = extractor.fuse_cams(
                        [_normalize_maps(c.detach()[:, None])[:, 0] for c in cams]
                    ).float()
                if out is None:
                    out = cam.new_zeros((cam.shape[0], labels.shape[1], *cam.shape[-2:]))
                rows = [i for i, c in enumerate(classes) if c >= 0]
                if rows:
                    out[rows, [classes[i] for i in rows]] = cam[rows]
        assert out is not None
        return out

    return maps


def from_pytorch_grad_cam(cam: Any) -> MapExtractor:
    """Wrap a grad-cam (``pytorch_grad_cam``) object (``GradCAM(model, target_layers=[...])``).

    Each call runs ``cam(input_tensor=images, targets=[ClassifierOutputTarget(c) ...])`` with one
    class per image, one round per class of the most labelled image. grad-cam returns maps
    already resized to the images and min-max scaled per image; :func:`class_maps` then divides
    them by their maximum again (a no-op) and fuses flips and scales as usual. grad-cam calls
    ``model.zero_grad()`` and ``backward``: the parameters' ``.grad`` are given back as they were.
    Note that grad-cam's constructor puts the model in eval mode.

    Args:
        cam: A ``pytorch_grad_cam`` CAM object (any ``BaseCAM``).

    Returns:
        ``maps(images, labels) -> (N, K, H, W)`` float32 raw maps, zeros for unlabelled classes,
        for :func:`class_maps`.

    Raises:
        ImportError: If grad-cam is not installed.
        ValueError: If ``cam`` does not look like a grad-cam object.
    """
    targets_module = _optional(
        "pytorch_grad_cam.utils.model_targets", "grad-cam", "from_pytorch_grad_cam"
    )
    target_cls = targets_module.ClassifierOutputTarget
    model = getattr(cam, "model", None)
    if not isinstance(model, nn.Module) or not callable(cam):
        raise ValueError(
            f"cam must be a pytorch_grad_cam CAM object (with .model), got {type(cam).__name__}"
        )

    def maps(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images = _check_images(images)
        labels = _check_labels(labels, images.shape[0])
        n, _, h, w = images.shape
        out = torch.zeros((n, labels.shape[1], h, w), dtype=torch.float32, device=images.device)
        with _keep_grads(model):
            for classes in _rounds(labels):
                targets = [target_cls(c if c >= 0 else 0) for c in classes]
                with torch.enable_grad():
                    arr = cam(input_tensor=images, targets=targets)
                m = torch.as_tensor(arr, dtype=torch.float32).to(images.device)
                rows = [i for i, c in enumerate(classes) if c >= 0]
                out[rows, [classes[i] for i in rows]] = m[rows]
        return out

    return maps


# ----------------------------------------------------------------------------- SeeNet's conventions


def _check_size(size: object, images: torch.Tensor) -> tuple[int, int]:
    if size is None:
        return int(images.shape[-2]), int(images.shape[-1])
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size, size
    if (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        return int(size[0]), int(size[1])
    raise ValueError(f"size must be None, a positive int or (H, W), got {size!r}")


def _check_scales(scales: object) -> tuple[float, ...]:
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
        raise ValueError(f"scales must be a non-empty sequence of positive numbers, got {scales!r}")
    out = []
    for s in scales:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0:
            raise ValueError(f"scales must hold positive numbers, got {scales!r}")
        out.append(float(s))
    return tuple(out)


def class_maps(
    extractor: MapExtractor,
    images: torch.Tensor,
    labels: torch.Tensor,
    size: int | tuple[int, int] | None = None,
    flip: bool = True,
    scales: Sequence[float] = (1.0,),
) -> torch.Tensor:
    """Class attention maps in [0, 1] from any extractor, with SeeNet's conventions.

    As :meth:`seenet.SeeNet.attention_maps` does for its branches: per view and class the
    raw maps go through ``relu`` and are divided by their spatial maximum (all-zero maps stay 0);
    with ``flip`` the mirrored images go through the extractor too and the mirrored-back maps
    are fused by an element-wise maximum, so the maps of a mirrored image are the mirrored maps;
    the result is resized bilinearly (``align_corners=False``) to ``size``; classes outside the
    labels are 0.

    Multi-scale: each scale ``s`` resizes the images bilinearly to ``round(s * H) x round(s * W)``,
    its (flip-fused, normalised) maps are resized to ``size``, and the scales are **averaged**.
    Each scale is normalised on its own before the average, so every scale weighs the same and the
    average is not renormalised (its maximum can be below 1). IRN instead sums the raw
    ``relu``-ed maps of its scales (1.0, 0.5, 1.5, 2.0) and then divides by the maximum, which
    weighs the scales by their activation strength. With one scale of 1.0 (the default) this
    function equals ``SeeNet.attention_maps`` for SeeNet's own maps.

    Args:
        extractor: ``extractor(images, labels) -> (N, K, h, w)`` raw maps, e.g. :class:`CAM`,
            :class:`GradCAM`, :func:`from_torchcam` or :func:`from_pytorch_grad_cam`.
        images: Normalised images.
        labels: Multi-hot labels choosing the classes (nonzero = present).
        size: Output size ``(H, W)`` or an int; default the size of ``images``.
        flip: Add horizontal test-time flipping (one extractor call on ``2N`` images).
        scales: Image scales, averaged.

    Returns:
        Float32 maps in [0, 1], on the extractor's device, without gradients.

    Shape:
        - images: (N, C, H_in, W_in)
        - labels: (N, K)
        - output: (N, K, H, W)

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        >>> images, labels = torch.randn(1, 3, 8, 8), torch.tensor([[0, 1, 1]])
        >>> maps = class_maps(CAM(model, "1"), images, labels, scales=(1.0, 0.5))
        >>> maps.shape, bool(maps.min() >= 0), bool(maps.max() <= 1)
        (torch.Size([1, 3, 8, 8]), True, True)
        >>> flipped = class_maps(CAM(model, "1"), images.flip(-1), labels, scales=(1.0, 0.5))
        >>> torch.allclose(flipped, maps.flip(-1), atol=1e-6)
        True
    """
    if not callable(extractor):
        raise ValueError(f"extractor must be callable, got {type(extractor).__name__}")
    images = _check_images(images)
    n, _, h_in, w_in = images.shape
    labels = _check_labels(labels, n)
    out_size = _check_size(size, images)
    if not isinstance(flip, bool):
        raise ValueError(f"flip must be a bool, got {flip!r}")
    scale_list = _check_scales(scales)
    drive = torch.cat([labels, labels]) if flip else labels
    total: torch.Tensor | None = None
    for s in scale_list:
        x = images
        if s != 1.0:
            hw = (max(1, round(s * h_in)), max(1, round(s * w_in)))
            x = F.interpolate(images, size=hw, mode="bilinear", align_corners=False)
        if flip:
            x = torch.cat([x, x.flip(-1)])
        raw = extractor(x, drive)
        if not isinstance(raw, torch.Tensor) or raw.ndim != 4 or raw.shape[:2] != drive.shape:
            got = tuple(raw.shape) if isinstance(raw, torch.Tensor) else type(raw).__name__
            raise ValueError(
                f"extractor must return raw maps (N, K, h, w) = ({len(drive)}, "
                f"{drive.shape[1]}, h, w), got {got}"
            )
        with torch.no_grad():
            maps = _normalize_maps(raw.detach())
            if flip:
                maps = torch.maximum(maps[:n], maps[n:].flip(-1))
            if tuple(maps.shape[-2:]) != out_size:
                maps = F.interpolate(maps, size=out_size, mode="bilinear", align_corners=False)
            total = maps if total is None else total + maps
    assert total is not None
    with torch.no_grad():
        if len(scale_list) > 1:
            total = total / len(scale_list)
        keep = (labels != 0).to(total.device)[:, :, None, None]
        return torch.where(keep, total.clamp(0.0, 1.0), torch.zeros_like(total))


def make_extractor(model: nn.Module, method: str = "gradcam", target_layer: str | None = None):
    """An extractor for ``model`` by name: what the ``cam-maps`` command builds from its config.

    Args:
        model: A classifier, ``model(images) -> logits (N, K)``.
        method: ``"cam"``, ``"gradcam"``, ``"torchcam:<Name>"`` (a class of ``torchcam.methods``,
            e.g. ``"torchcam:GradCAMpp"``, ``"torchcam:LayerCAM"``) or ``"pytorch_grad_cam:<Name>"``
            (e.g. ``"pytorch_grad_cam:GradCAMPlusPlus"``).
        target_layer: Dotted name of the module whose output is explained; ``None`` uses the
            model's ``feature_layer`` (:class:`seenet.models.classifier.ImageClassifier` has one).

    Returns:
        A :data:`MapExtractor`.

    Raises:
        ValueError: For an unknown method or layer, or a model without a default layer.
        ImportError: If the method's package is not installed.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        >>> type(make_extractor(model, "cam", "1")).__name__
        'CAM'
    """
    _check_model(model)
    if target_layer is None:
        target_layer = getattr(model, "feature_layer", None)
        if not isinstance(target_layer, str):
            raise ValueError(
                "target_layer is required for a model without a feature_layer attribute"
            )
    if not isinstance(method, str):
        raise ValueError(f"method must be a string, got {method!r}")
    if method == "cam":
        return CAM(model, target_layer)
    if method == "gradcam":
        return GradCAM(model, target_layer)
    package, _, name = method.partition(":")
    if package == "torchcam" and name:
        methods = _optional("torchcam.methods", "torchcam", method)
        if not hasattr(methods, name):
            raise ValueError(f"method: torchcam.methods has no {name!r}")
        return from_torchcam(getattr(methods, name)(model, target_layer))
    if package == "pytorch_grad_cam" and name:
        grad_cam = _optional("pytorch_grad_cam", "grad-cam", method)
        if not hasattr(grad_cam, name):
            raise ValueError(f"method: pytorch_grad_cam has no {name!r}")
        layer = _resolve_module(model, target_layer, "target_layer")
        return from_pytorch_grad_cam(getattr(grad_cam, name)(model=model, target_layers=[layer]))
    raise ValueError(
        f"method must be 'cam', 'gradcam', 'torchcam:<Name>' or 'pytorch_grad_cam:<Name>', "
        f"got {method!r}"
    )
