"""The ``proxy-gt`` stage: proxy ground truth from stored maps and saliency (paper Algorithm 1)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Config, ProxyConfig
from ..data.maps import load_maps
from ..data.saliency import SaliencyFolder
from ..data.voc import load_label, save_label
from ..proxy import proxy_ground_truth_from_maps
from ..saliency import frequency_tuned_saliency
from ._batch import label_name, overlay_ids, run_batch_job, write_json
from ._layout import DataLayout, start
from ._manifest import claim_output, manifest_digest

__all__ = ["proxy_gt", "write_label_overlays"]


class _ProxyLabel:
    """Reads one image's maps and saliency, computes Algorithm 1 and writes the label PNG.

    Runs in the data-loading workers (it is picklable), so several images are done at once.
    """

    def __init__(self, layout: DataLayout, section: ProxyConfig, maps_dir: Path,
                 out_dir: Path) -> None:
        self.layout, self.section = layout, section
        self.maps_dir, self.out_dir = maps_dir, out_dir
        self.folder: SaliencyFolder | None = layout.saliency()

    def saliency(self, image_id: str, size: tuple[int, int]) -> torch.Tensor:
        if self.folder is not None:
            return self.folder.load(image_id, size=size)
        image = self.layout.load_image(image_id)
        if (image.size[1], image.size[0]) != size:
            from PIL import Image

            image = image.resize((size[1], size[0]), Image.BILINEAR)
        return frequency_tuned_saliency(image)

    def __call__(self, image_id: str) -> np.ndarray:
        p = self.section
        path = self.maps_dir / f"{image_id}.npz"
        classes, maps = load_maps(path)
        if len(classes) and int(classes.max()) >= self.layout.num_classes:
            raise ValueError(
                f"{path}: class {int(classes.max())} is outside the {self.layout.num_classes} "
                "classes of the recipe"
            )
        saliency = self.saliency(image_id, (int(maps.shape[1]), int(maps.shape[2])))
        label = proxy_ground_truth_from_maps(
            classes, maps, saliency, w=p.w, saliency_threshold=p.saliency_threshold,
            conflict_threshold=p.conflict_threshold, ignore_index=p.ignore_index,
        )  # fmt: skip
        array = label.numpy().astype(np.uint8)
        save_label(self.out_dir / f"{image_id}.png", array)
        return np.bincount(array.ravel(), minlength=256)


def write_label_overlays(layout: DataLayout, ids: list[str], label_dir: Path,
                         out_dir: Path) -> None:
    """One PNG per image: the image and its label map over it."""
    from ..viz import overlay_labels, save_png, tile

    for image_id in ids:
        image = layout.image_array(image_id)
        label = load_label(label_dir / f"{image_id}.png")
        save_png(out_dir / f"{image_id}.png",
                 tile([image, overlay_labels(image, label)], ["image", "proxy labels"]))


def proxy_gt(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Build proxy ground truth from stored maps and saliency (paper Algorithm 1).

    For every image of the split, reads ``maps_dir/{id}.npz`` and the saliency map
    (``data.saliency_dir/{id}.png``, or the built-in saliency when ``data.saliency_dir`` is
    ``None``), calls :func:`seenet.proxy_ground_truth` and writes a VOC-palette PNG
    ``out_dir/{id}.png`` (0 background, ``c + 1`` for class ``c``, 255 ignore). Finished files are
    skipped while ``run.json`` matches (the same settings and the same stored maps, through their
    own ``run.json``). Reads the ``proxy`` section (:class:`seenet.config.ProxyConfig`).

    Args:
        cfg: The configuration.
        overwrite: Recompute the labels of a folder that holds labels of other maps or settings.

    Returns:
        Summary: ``total``, ``written``, ``skipped``, ``seconds``, ``out_dir``, ``class_pixels``
        (fraction of labelled pixels per label id over the written images).
    """
    cfg, info, layout, paths = start(cfg)
    section = cfg.proxy
    maps_dir, out_dir = paths.proxy_maps, paths.proxy
    if not maps_dir.is_dir():
        raise FileNotFoundError(f"proxy.maps_dir not found: {maps_dir} (run attention-maps first)")
    ids = layout.ids(section.split)
    config = {k: section[k] for k in ("w", "saliency_threshold", "conflict_threshold",
                                      "ignore_index")}  # fmt: skip
    config["data"] = {k: cfg.data[k] for k in ("saliency_dir", "image_dir", "image_suffix",
                                               "num_classes")}  # fmt: skip
    inputs = {"maps": manifest_digest(maps_dir) or str(maps_dir)}
    claim_output(out_dir, "proxy-gt", config, inputs, ("*.png", "overlays", "summary.json"), info,
                 overwrite)  # fmt: skip
    summary = run_batch_job(
        ids, lambda image_id, counts: {"counts": counts}, info, desc="proxy ground truth",
        load=_ProxyLabel(layout, section, maps_dir, out_dir),
        done=lambda i: (out_dir / f"{i}.png").is_file(),
        num_workers=layout.num_workers,
    )  # fmt: skip
    counts = np.asarray(summary.pop("counts", np.zeros(256)))
    total = counts.sum()
    summary.update(
        out_dir=str(out_dir),
        class_pixels={
            label_name(i, layout.num_classes): round(float(c / total), 6)
            for i, c in enumerate(counts) if c > 0
        },
        rank=info.rank,
    )  # fmt: skip
    chosen_ids = overlay_ids(section, ids, "proxy")
    if info.is_main:
        if chosen_ids:
            write_label_overlays(layout, chosen_ids, out_dir, out_dir / "overlays")
        write_json(out_dir / "summary.json", summary)
    return summary
