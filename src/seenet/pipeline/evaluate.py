"""The scoring stages: the segmentation network, attention maps, proxy or pseudo labels.

``evaluate`` scores the segmentation network, ``evaluate-maps`` stored attention maps along a
threshold sweep, ``evaluate-labels`` label PNGs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..data.maps import load_maps
from ..data.transforms import to_tensor
from ..data.voc import load_label, save_label
from ..metrics import ConfusionMatrix
from ..models import segment
from ._batch import build_model, load_weights, overlay_ids, run_batch_job, write_json
from ._layout import DataLayout, start
from ._manifest import claim_output, file_digest, manifest_digest

__all__ = ["evaluate", "evaluate_maps", "evaluate_labels"]


class _LoadPair:
    """Loads one image and its ground truth (picklable for data-loading workers)."""

    def __init__(self, layout: DataLayout, label_dir: Path, keep_rgb: bool) -> None:
        self.layout, self.label_dir, self.keep_rgb = layout, label_dir, keep_rgb

    def __call__(self, image_id: str) -> dict[str, Any]:
        image = self.layout.load_image(image_id)
        label = load_label(self.label_dir / f"{image_id}.png")
        if label.shape != (image.size[1], image.size[0]):
            raise ValueError(
                f"label map {self.label_dir / (image_id + '.png')} is {label.shape}, its image "
                f"is {(image.size[1], image.size[0])}"
            )
        rgb = np.array(image) if self.keep_rgb else None  # writable: pydensecrf needs it
        return {"image": to_tensor(image), "rgb": rgb,
                "label": torch.from_numpy(label.astype(np.int64))}


def evaluate(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Evaluate the segmentation network: per-class IoU and mIoU (VOC protocol).

    Reads the model description from ``segmentation.model`` and the ``evaluate`` section
    (:class:`seenet.config.EvaluateConfig`): the split, weights and ground truth, the test scales
    (the paper's multi-scale test uses 0.5, 0.75, 1.0, 1.25 and 1.5), flipping, the dense CRF
    (the ``crf`` extra), predictions and overlays.

    Args:
        cfg: The configuration.
        overwrite: Replace the results of another model or setting in ``evaluate.out_dir``.

    Returns:
        Summary: ``miou``, ``iou`` (class name -> IoU, ``None`` for classes absent from both
        prediction and ground truth), ``num_images``, ``table`` (printable per-class table),
        ``seconds``, ``out_dir``.
    """
    cfg, info, layout, paths = start(cfg)
    section, out_dir = cfg.evaluate, paths.evaluation
    if section.crf:
        from ..crf import dense_crf
    label_dir = layout.inside(section.label_dir, layout.eval_label_dir)
    ids = layout.ids(section.split, layout.val_split)
    chosen = set(overlay_ids(section, ids, "evaluate"))
    num_labels = layout.num_classes + 1
    model = build_model(cfg.segmentation.model, "segmentation", num_labels, pretrained=False)
    load_weights(model, paths.eval_weights, "evaluate.weights")
    model.to(info.device).eval()
    config = {k: section[k] for k in ("split", "label_dir", "scales", "flip", "crf")}
    config["model"] = {k: v for k, v in cfg.segmentation.model.items() if k != "pretrained"}
    claim_output(out_dir, "evaluate", config, {"weights": file_digest(paths.eval_weights)},
                 ("predictions", "overlays", "metrics.json"), info, overwrite)  # fmt: skip
    ignore = int(cfg.segmentation.transforms.ignore_index)
    cm = ConfusionMatrix(num_classes=num_labels, ignore_index=ignore)

    def per_item(image_id: str, item: dict[str, Any]) -> None:
        probs = segment(model, item["image"].to(info.device), scales=section.scales,
                        flip=section.flip).float()
        if not bool(torch.isfinite(probs).all()):
            raise FloatingPointError(f"evaluate: the model's output for {image_id} is not finite")
        if section.crf:
            probs = torch.from_numpy(dense_crf(item["rgb"], probs.cpu().numpy()))
        pred = probs.argmax(0).cpu()
        cm.update(pred, item["label"])
        if section.save_predictions:
            save_label(out_dir / "predictions" / f"{image_id}.png", pred.numpy())
        if image_id in chosen:
            from ..viz import overlay_labels, save_png, tile

            rgb = item["rgb"]
            save_png(
                out_dir / "overlays" / f"{image_id}.png",
                tile([rgb, overlay_labels(rgb, item["label"].numpy(), ignore_index=ignore),
                      overlay_labels(rgb, pred.numpy())], ["image", "ground truth", "prediction"]),
            )

    job = run_batch_job(
        ids, per_item, info, desc="evaluate",
        load=_LoadPair(layout, label_dir, keep_rgb=bool(section.crf or chosen)),
        num_workers=layout.num_workers,
    )  # fmt: skip
    if info.distributed:
        import torch.distributed as dist

        matrix = cm.matrix.to(info.device)
        dist.all_reduce(matrix)
        cm.matrix = matrix.cpu()
    iou = cm.iou().tolist()
    summary: dict[str, Any] = {
        "miou": cm.miou(),
        "pixel_accuracy": cm.accuracy(),
        "iou": {name: (None if v != v else v) for name, v in zip(cm.class_names, iou)},
        "num_images": len(ids),
        "scales": list(section.scales),
        "flip": section.flip,
        "crf": section.crf,
        "seconds": job["seconds"],
        "out_dir": str(out_dir),
        "table": cm.table(),
        "rank": info.rank,
    }
    if info.is_main:
        write_json(out_dir / "metrics.json", summary)
    return summary


def _score(
    stage: str,
    meter: Any,
    update: Any,
    layout: DataLayout,
    ids: list[str],
    label_dir: Path,
    info: Any,
) -> dict[str, Any]:
    """Run ``update(image_id, target)`` over ``ids`` (all processes) and reduce ``meter``."""

    def load(image_id: str) -> np.ndarray:
        return load_label(label_dir / f"{image_id}.png").astype(np.int64)

    job = run_batch_job(ids, update, info, desc=stage, load=load,
                        num_workers=layout.num_workers)  # fmt: skip
    if info.distributed:
        meter.all_reduce(info.device)
    result = meter.result()
    result.update(num_images=len(ids), seconds=job["seconds"], rank=info.rank)
    return result


def evaluate_maps(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Score stored attention maps as weakly supervised segmentation papers report them.

    Every image of ``evaluate_maps.split`` (VOC ``train``, the 1,464 images papers report) is
    scored against ``SegmentationClass`` along the threshold sweep of
    :class:`seenet.metrics.AttentionSweep`: at a threshold ``t`` a pixel takes the class of its
    largest map where that map is at least ``t``, else background. The mean IoU follows VOC (the
    mean over the classes present in prediction or truth, 255 ignored); the best threshold is
    reported with the whole curve, the per-class IoU, precision, recall and the false-positive and
    false-negative shares of SEAM's evaluation script. Writes ``scores.json`` and ``curve.png``
    into ``evaluate_maps.out_dir``. Works on maps from ``attention-maps`` or ``cam-maps``.

    Args:
        cfg: The configuration.
        overwrite: Replace the scores of other maps in the output folder.

    Returns:
        The scores (see :meth:`seenet.metrics.AttentionSweep.result`), plus ``num_images``,
        ``maps_dir``, ``seconds``.
    """
    from ..metrics import AttentionSweep
    from ..viz import plot_curves, save_png

    cfg, info, layout, paths = start(cfg)
    section, out_dir = cfg.evaluate_maps, paths.evaluate_maps
    maps_dir = Path(section.maps_dir) if section.maps_dir is not None else paths.maps
    if not maps_dir.is_dir():
        raise FileNotFoundError(f"evaluate_maps.maps_dir not found: {maps_dir}")
    label_dir = layout.inside(section.label_dir, layout.eval_label_dir)
    ids = layout.ids(section.split)
    inputs = {"maps": manifest_digest(maps_dir) or str(maps_dir)}
    config = {"split": section.split, "label_dir": str(label_dir),
              "thresholds": list(section.thresholds)}  # fmt: skip
    claim_output(out_dir, "evaluate-maps", config, inputs, ("scores.json", "curve.png"), info,
                 overwrite)  # fmt: skip
    sweep = AttentionSweep(layout.num_classes + 1, tuple(section.thresholds))

    def update(image_id: str, target: np.ndarray) -> None:
        classes, maps = load_maps(maps_dir / f"{image_id}.npz")
        sweep.update(classes, maps, target)

    scores = _score("evaluate-maps", sweep, update, layout, ids, label_dir, info)
    scores["maps_dir"] = str(maps_dir)
    if info.is_main:
        write_json(out_dir / "scores.json", scores)
        curve = {float(t): v for t, v in scores["curve"].items()}
        save_png(out_dir / "curve.png", plot_curves({maps_dir.name: curve},
                 title=f"attention mIoU (%) on {section.split} along the threshold sweep"))
    return scores


def evaluate_labels(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Score label PNGs (proxy ground truth or any pseudo labels) against the ground truth.

    A label value of 255 counts as "not labelled": it is background for the mean IoU (an
    unlabelled pixel is not an object), and the fraction of labelled pixels and the mean IoU on
    them alone are reported too (:class:`seenet.metrics.LabelScore`). Writes ``scores.json`` into
    ``evaluate_labels.out_dir``.

    Args:
        cfg: The configuration.
        overwrite: Replace the scores of other labels in the output folder.

    Returns:
        The scores (see :meth:`seenet.metrics.LabelScore.result`), plus ``num_images``,
        ``labels_dir``, ``seconds``.
    """
    from ..metrics import LabelScore

    cfg, info, layout, paths = start(cfg)
    section, out_dir = cfg.evaluate_labels, paths.evaluate_labels
    labels_dir = Path(section.labels_dir) if section.labels_dir is not None else paths.proxy
    if not labels_dir.is_dir():
        raise FileNotFoundError(f"evaluate_labels.labels_dir not found: {labels_dir}")
    label_dir = layout.inside(section.label_dir, layout.eval_label_dir)
    ids = layout.ids(section.split)
    inputs = {"labels": manifest_digest(labels_dir) or str(labels_dir)}
    config = {"split": section.split, "label_dir": str(label_dir)}
    claim_output(out_dir, "evaluate-labels", config, inputs, ("scores.json",), info, overwrite)
    score = LabelScore(layout.num_classes + 1)

    def update(image_id: str, target: np.ndarray) -> None:
        score.update(load_label(labels_dir / f"{image_id}.png").astype(np.int64), target)

    scores = _score("evaluate-labels", score, update, layout, ids, label_dir, info)
    scores["labels_dir"] = str(labels_dir)
    if info.is_main:
        write_json(out_dir / "scores.json", scores)
    return scores
