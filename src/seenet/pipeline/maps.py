"""The ``attention-maps`` stage: class attention maps of every image of a split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write
from ..config import Config, resolve_config
from ..data.maps import load_maps, save_maps
from ..data.transforms import resize_image, to_tensor
from ..engine import barrier, init_distributed
from ._batch import build_model, class_name, load_weights, overlay_ids, run_batch_job, write_json
from ._layout import DataLayout, RunPaths
from ._manifest import file_digest, make_manifest, prepare_output

__all__ = ["attention_maps", "write_map_overlays"]


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


def maps_manifest(cfg: Config, weights: Path) -> dict[str, Any]:
    """The manifest of the stored maps: what decides them, and the weights' digest."""
    model = {k: v for k, v in cfg.attention.model.items()
             if k not in ("pretrained", "backbone_from")}  # fmt: skip
    maps = {k: cfg.maps[k] for k in ("input_size", "flip", "labels", "save_png")}
    data = {k: cfg.data[k] for k in ("image_dir", "image_suffix", "label_dir", "annotation_dir",
                                     "labels_from", "num_classes")}  # fmt: skip
    config = {"model": model, "maps": maps, "data": data}
    return make_manifest("attention-maps", config, {"weights": file_digest(weights)})


def attention_maps(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Compute class attention maps for every image of a split (paper §5.1 inference).

    Each image is resized to ``maps.input_size`` (224), passed through
    :meth:`seenet.SeeNet.attention_maps` (S_A and S_B fused, flipped), and the maps of the driving
    classes are stored at the image's original size as one ``.npz`` per image
    (:func:`seenet.data.maps.save_maps`), its class PNGs (``save_png``) first and the ``.npz``,
    which marks the image done, last. Finished files are skipped, so an interrupted job resumes,
    but only while ``run.json`` matches (same weights, same settings): maps of other weights are
    never reported as done. Reads the model description from ``attention.model`` and the ``maps``
    section (:class:`seenet.config.MapsConfig`).

    Args:
        cfg: The configuration.
        overwrite: Recompute the maps of a folder that holds maps of other weights or settings.

    Returns:
        Summary: ``total``, ``written``, ``skipped``, ``seconds``, ``out_dir``.
    """
    cfg = resolve_config(cfg)
    info = init_distributed(cfg.device)
    layout = DataLayout.from_config(cfg.data)
    paths = RunPaths.from_config(cfg)
    section, out_dir = cfg.maps, paths.maps
    ids = layout.ids(section.split)
    model = build_model(cfg.attention.model, "attention", layout.num_classes, pretrained=False)
    load_weights(model, paths.maps_weights, "maps.weights")
    model.to(info.device).eval()
    manifest = maps_manifest(cfg, paths.maps_weights)
    outputs = ("*.npz", "*.png", "overlays", "summary.json")
    prepare_output(out_dir, manifest, outputs, overwrite=overwrite, where="attention-maps",
                   write=info.is_main)  # fmt: skip
    barrier(info)

    def per_item(image_id: str, item: dict[str, Any]) -> None:
        labels = item["labels"]
        with torch.no_grad():
            maps = model.attention_maps(
                item["image"][None].to(info.device),
                None if labels is None else labels[None].to(info.device),
                size=tuple(item["size"]),
                flip=section.flip,
            )[0].float().cpu()
        if not bool(torch.isfinite(maps).all()):
            raise FloatingPointError(
                f"attention-maps: the model's maps of {image_id} are not finite; nothing written"
            )
        if labels is not None:
            classes = labels.nonzero().flatten()
        else:
            classes = (maps.flatten(1).amax(1) > 0).nonzero().flatten()
        chosen = maps[classes].numpy()
        if section.save_png:
            _save_class_pngs(out_dir, image_id, classes.numpy(), chosen)
        save_maps(out_dir / f"{image_id}.npz", classes.numpy(), chosen)

    summary = run_batch_job(
        ids, per_item, info, desc="attention maps",
        load=_LoadImage(layout, list(ids), section.input_size, section.labels == "gt"),
        done=lambda i: (out_dir / f"{i}.npz").is_file(),
        num_workers=layout.num_workers,
    )  # fmt: skip
    summary.update(out_dir=str(out_dir), rank=info.rank)
    chosen_ids = overlay_ids(section, ids, "maps")
    if info.is_main:
        if chosen_ids:
            write_map_overlays(layout, chosen_ids, out_dir, out_dir / "overlays")
        write_json(out_dir / "summary.json", summary)
    return summary
