"""The map stages: ``attention-maps`` (SeeNet) and ``cam-maps`` (any classifier), one writer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write
from ..config import Config
from ..data.maps import load_maps, save_maps
from ..data.transforms import resize_image, to_tensor
from ..engine import DistInfo
from ._batch import build_model, class_name, load_weights, overlay_ids, run_batch_job, write_json
from ._layout import DataLayout, start
from ._manifest import claim_output, file_digest

__all__ = ["attention_maps", "cam_maps", "write_map_overlays"]

#: ``compute(images (1, 3, h, w), labels (1, K) or None, size) -> maps (K, H, W) in [0, 1]``.
Compute = Callable[[torch.Tensor, "torch.Tensor | None", tuple[int, int]], torch.Tensor]


class _LoadImage:
    """Loads one image (resized for the network) and its labels (picklable for workers)."""

    def __init__(self, layout: DataLayout, ids: list[str], input_size: int | None,
                 use_gt: bool) -> None:
        self.images = layout.image_labels(ids=ids)
        self.index = {image_id: i for i, image_id in enumerate(ids)}
        self.input_size, self.use_gt = input_size, use_gt

    def __call__(self, image_id: str) -> dict[str, Any]:
        index = self.index[image_id]
        image = self.images.load_image(index)
        size = (image.size[1], image.size[0])
        if self.input_size is not None:
            image = resize_image(image, self.input_size)
        labels = torch.from_numpy(self.images.labels(index)) if self.use_gt else None
        return {"image": to_tensor(image), "labels": labels, "size": size}


def _save_class_pngs(out_dir: Path, image_id: str, classes: np.ndarray, maps: np.ndarray) -> None:
    from PIL import Image

    for c, m in zip(classes.tolist(), maps):
        img = Image.fromarray(np.rint(m * 255).astype(np.uint8), mode="L")
        with atomic_write(out_dir / f"{image_id}_{c}.png", "wb") as f:
            img.save(f, format="PNG")


def write_map_overlays(layout: DataLayout, ids: list[str], maps_dir: Path, out_dir: Path) -> None:
    """One PNG per image: the image and each stored class map over it."""
    from ..viz import overlay_attention, save_png, tile

    for image_id in ids:
        image = layout.image_array(image_id)
        classes, maps = load_maps(maps_dir / f"{image_id}.npz")
        panels = [image] + [overlay_attention(image, m) for m in maps]
        titles = ["image"] + [class_name(c, layout.num_classes) for c in classes.tolist()]
        save_png(out_dir / f"{image_id}.png", tile(panels, titles))


def _write_maps(
    stage: str,
    compute: Compute,
    layout: DataLayout,
    section: Any,
    out_dir: Path,
    provenance: tuple[dict[str, Any], dict[str, Any]],
    info: DistInfo,
    overwrite: bool,
    use_gt: bool,
) -> dict[str, Any]:
    """Store the maps of every image of ``section.split`` (see :func:`attention_maps`).

    ``provenance`` is the ``(config, inputs)`` of the maps' ``run.json``.
    """
    ids = layout.ids(section.split)
    claim_output(out_dir, stage, *provenance, ("*.npz", "*.png", "overlays", "summary.json"),
                 info, overwrite)  # fmt: skip

    def per_item(image_id: str, item: dict[str, Any]) -> None:
        labels = item["labels"]
        maps = compute(
            item["image"][None].to(info.device),
            None if labels is None else labels[None].to(info.device),
            tuple(item["size"]),
        ).float().cpu()
        if not bool(torch.isfinite(maps).all()):
            raise FloatingPointError(
                f"{stage}: the model's maps of {image_id} are not finite; nothing written"
            )
        if labels is not None:
            classes = labels.nonzero().flatten()
        else:
            classes = (maps.flatten(1).amax(1) > 0).nonzero().flatten()
        chosen = maps[classes].numpy()
        if section.save_png:  # secondary files first: the .npz marks the image done
            _save_class_pngs(out_dir, image_id, classes.numpy(), chosen)
        save_maps(out_dir / f"{image_id}.npz", classes.numpy(), chosen)

    summary = run_batch_job(
        ids, per_item, info, desc=stage,
        load=_LoadImage(layout, list(ids), section.input_size, use_gt),
        done=lambda i: (out_dir / f"{i}.npz").is_file(),
        num_workers=layout.num_workers,
    )  # fmt: skip
    summary.update(out_dir=str(out_dir), rank=info.rank)
    chosen_ids = overlay_ids(section, ids, stage) if hasattr(section, "overlay_ids") else []
    if info.is_main:
        if chosen_ids:
            write_map_overlays(layout, chosen_ids, out_dir, out_dir / "overlays")
        write_json(out_dir / "summary.json", summary)
    return summary


def _data_keys(cfg: Config) -> dict[str, Any]:
    return {k: cfg.data[k] for k in ("image_dir", "image_suffix", "label_dir", "annotation_dir",
                                     "labels_from", "num_classes")}  # fmt: skip


def _model_keys(model: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in ("pretrained", "backbone_from")}


def attention_maps(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Compute class attention maps for every image of a split (paper §5.1 inference).

    Each image is resized to ``maps.input_size`` (224), passed through
    :meth:`seenet.SeeNet.attention_maps` (S_A and S_B fused, or one branch alone with
    ``maps.branch``; flipped, optionally averaged over ``maps.scales``), and the maps of the
    driving classes are stored at the image's original size as one ``.npz`` per image
    (:func:`seenet.data.maps.save_maps`), its class PNGs (``save_png``) first and the ``.npz``,
    which marks the image done, last. Finished files are skipped, so an interrupted job resumes,
    but only while ``run.json`` matches (same weights, same settings): maps of other weights are
    never reported as done. Reads the model description from ``attention.model`` and the
    ``maps`` section (:class:`seenet.config.MapsConfig`).

    Args:
        cfg: The configuration.
        overwrite: Recompute the maps of a folder that holds maps of other weights or settings.

    Returns:
        Summary: ``total``, ``written``, ``skipped``, ``seconds``, ``out_dir``.
    """
    cfg, info, layout, paths = start(cfg)
    section = cfg.maps
    model = build_model(cfg.attention.model, "attention", layout.num_classes, pretrained=False)
    load_weights(model, paths.maps_weights, "maps.weights")
    if section.branch == "b" and getattr(model, "head_b", None) is None:
        raise ValueError(
            f"maps.branch: 'b' needs an erasing mode, and attention.model has none "
            f"(erase_mode {getattr(model, 'erase_mode', None)!r})"
        )
    model.to(info.device).eval()
    config = {
        "model": _model_keys(cfg.attention.model),
        "maps": {k: section[k] for k in ("input_size", "flip", "scales", "labels", "save_png")
                 + (("branch",) if section.branch != "fused" else ())},
        "data": _data_keys(cfg),
    }
    provenance = (config, {"weights": file_digest(paths.maps_weights)})

    def compute(images: torch.Tensor, labels: torch.Tensor | None, size: tuple[int, int]):
        return model.attention_maps(images, labels, size=size, flip=section.flip,
                                    scales=section.scales, branch=section.branch)[0]  # fmt: skip

    return _write_maps("attention-maps", compute, layout, section, paths.maps, provenance, info,
                       overwrite, use_gt=section.labels == "gt")  # fmt: skip


def cam_maps(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Stored maps from any image classifier: CAM, Grad-CAM, or a torchcam / grad-cam method.

    The classifier (``cam.model``, by default ``attention.model``, e.g. ``classifier`` or
    ``classifier_efficientnet_lite0`` trained by ``train-attention``) is explained at
    ``cam.target_layer`` by ``cam.method`` (:func:`seenet.cam.make_extractor`) for the
    ground-truth classes of every image; :func:`seenet.cam.class_maps` applies SeeNet's
    conventions (per-class normalisation, flip, scales), and the maps are stored in seenet's
    ``.npz`` format, so ``proxy-gt``, ``train-seg``, ``evaluate-maps`` and ``evaluate-labels``
    run on them unchanged (point ``proxy.maps_dir`` or ``evaluate_maps.maps_dir`` at
    ``cam.out_dir``).
    Resumes and refuses stale outputs as :func:`attention_maps` does.

    Args:
        cfg: The configuration.
        overwrite: Recompute the maps of a folder that holds maps of another model or method.

    Returns:
        Summary: ``total``, ``written``, ``skipped``, ``seconds``, ``out_dir``.
    """
    from ..cam import class_maps, make_extractor

    cfg, info, layout, paths = start(cfg)
    section = cfg.cam
    spec = section.model or cfg.attention.model
    model = build_model(spec, "cam", layout.num_classes, pretrained=False)
    load_weights(model, paths.cam_weights, "cam.weights")
    model.to(info.device).eval()
    probe = model(torch.zeros(1, 3, 64, 64, device=info.device))
    if not isinstance(probe, torch.Tensor) or probe.shape != (1, layout.num_classes):
        raise ValueError(
            f"cam.model: {spec.get('name')!r} is not a classifier (model(images) must return "
            f"(N, {layout.num_classes}) scores); SeeNet's maps come from attention-maps"
        )
    extractor = make_extractor(model, section.method, section.target_layer)
    keys = ("method", "target_layer", "input_size", "flip", "scales", "save_png")
    config = {"model": _model_keys(spec), "cam": {k: section[k] for k in keys},
              "data": _data_keys(cfg)}  # fmt: skip
    provenance = (config, {"weights": file_digest(paths.cam_weights)})

    def compute(images: torch.Tensor, labels: torch.Tensor | None, size: tuple[int, int]):
        return class_maps(extractor, images, labels, size=size, flip=section.flip,
                          scales=section.scales)[0]  # fmt: skip

    return _write_maps("cam-maps", compute, layout, section, paths.cam_maps, provenance, info,
                       overwrite, use_gt=True)  # fmt: skip
