"""Adapters for the extractors of torchcam and grad-cam (``pip install "seenet[cam]"``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from .._validation import check_rows, check_tensor
from ..models.seenet import _normalize_maps
from ._extractors import MapExtractor, _keep_grads, _optional, _rounds

__all__ = ["from_torchcam", "from_pytorch_grad_cam"]


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
        images = check_tensor(images, "images", ("N", "C", "H", "W"))
        labels = check_rows(labels, "labels", images.shape[0])
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
        images = check_tensor(images, "images", ("N", "C", "H", "W"))
        labels = check_rows(labels, "labels", images.shape[0])
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
