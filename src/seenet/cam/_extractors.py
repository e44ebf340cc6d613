"""CAM and Grad-CAM with hooks on plain PyTorch, and the helpers every extractor shares."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn

from .._validation import check_rows, check_tensor

__all__ = ["MapExtractor", "CAM", "GradCAM"]

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
        images = check_tensor(images, "images", ("N", "C", "H", "W"))
        weight = _fc_weight(self.fc).detach()
        labels = check_rows(labels, "labels", images.shape[0], weight.shape[0])
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
        images = check_tensor(images, "images", ("N", "C", "H", "W"))
        labels = check_rows(labels, "labels", images.shape[0])
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
