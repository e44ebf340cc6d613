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

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._validation import check_rows, check_scales, check_size, check_tensor
from ..models.seenet import _normalize_maps
from ._adapters import from_pytorch_grad_cam, from_torchcam
from ._extractors import CAM, GradCAM, MapExtractor, _check_model, _optional, _resolve_module

__all__ = [
    "MapExtractor",
    "CAM",
    "GradCAM",
    "class_maps",
    "from_torchcam",
    "from_pytorch_grad_cam",
    "make_extractor",
]


# ----------------------------------------------------------------------------- SeeNet's conventions






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
    images = check_tensor(images, "images", ("N", "C", "H", "W"))
    n, _, h_in, w_in = images.shape
    labels = check_rows(labels, "labels", n)
    out_size = check_size(size, default=(h_in, w_in))
    if not isinstance(flip, bool):
        raise ValueError(f"flip must be a bool, got {flip!r}")
    scale_list = check_scales(scales)
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
