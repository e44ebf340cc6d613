"""The demo's figures and report."""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal (``"–"`` for ``None``)."""
    return "–" if x is None else f"{100 * x:.1f}"


def figures(out: Path, data_root: Path, runs: Path, ids: list[str], val_ids: list[str]) -> dict:
    """Two figures: training images (maps, saliency, proxy labels) and validation predictions."""
    from ..data.maps import load_maps
    from ..data.saliency import read_saliency
    from ..data.voc import load_image, load_label
    from ..viz import overlay_attention, overlay_labels, save_png, tile

    def peak(path: Path, shape: tuple[int, int]) -> np.ndarray:
        _, maps = load_maps(path)
        return maps.max(0) if len(maps) else np.zeros(shape, np.float32)

    rows = []
    for image_id in ids:
        image = np.asarray(load_image(data_root / "JPEGImages" / f"{image_id}.jpg"))
        truth = load_label(data_root / "SegmentationClassAug" / f"{image_id}.png")
        saliency = read_saliency(data_root / "Saliency" / f"{image_id}.png").numpy()
        panels = [image, overlay_attention(image, saliency, alpha=0.6)]
        for mode in ("cam", "seenet"):
            panels.append(overlay_attention(image, peak(runs / mode / "maps" / f"{image_id}.npz",
                                                        truth.shape), alpha=0.6))  # fmt: skip
        for mode in ("cam", "seenet"):
            label = load_label(runs / mode / "proxy_gt" / f"{image_id}.png")
            panels.append(overlay_labels(image, label, alpha=0.7))
        panels.append(overlay_labels(image, truth, alpha=0.7))
        rows.append(tile(panels, ["image", "saliency", "CAM", "SeeNet", "CAM labels",
                                  "SeeNet labels", "truth"]))  # fmt: skip
    save_png(out / "figures" / "training_images.png", np.concatenate(rows, 0))
    rows = []
    for image_id in val_ids:
        image = np.asarray(load_image(data_root / "JPEGImages" / f"{image_id}.jpg"))
        panels = [image]
        for mode in ("cam", "seenet"):
            pred = load_label(runs / mode / "evaluation" / "predictions" / f"{image_id}.png")
            panels.append(overlay_labels(image, pred, alpha=0.7))
        truth = load_label(data_root / "SegmentationClass" / f"{image_id}.png")
        panels.append(overlay_labels(image, truth, alpha=0.7))
        rows.append(tile(panels, ["image", "DeepLab on CAM labels", "DeepLab on SeeNet labels",
                                  "truth"]))  # fmt: skip
    save_png(out / "figures" / "validation_images.png", np.concatenate(rows, 0))
    return {
        "training": "figures/training_images.png",
        "validation": "figures/validation_images.png",
    }


def write_report(path: Path, values: dict[str, Any]) -> None:
    """``report.md`` from the template, with ``values`` substituted."""
    template = resources.files("seenet").joinpath("_templates/demo_report.md").read_text()
    with atomic_write(path, "w") as f:
        f.write(string.Template(template).substitute(values))
