"""The saliency stages: ``train-saliency``, ``saliency-maps`` and ``evaluate-saliency``.

Algorithm 1 turns attention into labels only as well as its saliency map separates objects from
background. The paper takes the maps of DSS, a detector trained on MSRA-B (pixel masks of salient
objects, a data set apart from VOC's labels). These stages train such a detector
(:class:`seenet.models.SaliencyNet`) on any salient-object data set in its usual layout, write its
maps as 8-bit PNGs into ``data.saliency_dir`` (where ``proxy-gt`` reads them), and score saliency
maps with the field's metrics. Training a saliency network is our addition to the paper's
pipeline; the paper's numbers need DSS's maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..config import Config
from ..data.saliency import SaliencyFolder, save_saliency
from ..data.sod import SaliencyTrainTransform, SalientObjectDataset
from ..data.transforms import resize_image, to_tensor
from ..data.voc import load_label
from ..saliency import frequency_tuned_saliency
from ._batch import build_model, load_weights, run_batch_job, write_json
from ._layout import DataLayout, start
from ._manifest import claim_output, file_digest, manifest_digest
from .train import guard_training, train_stage

__all__ = ["train_saliency", "saliency_maps", "evaluate_saliency"]


def train_saliency(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Train a class-agnostic saliency network on a salient-object data set.

    Reads the ``saliency`` section (:class:`seenet.config.SaliencyConfig`): the data set
    (``saliency.data``: images plus binary masks, as MSRA-B, DUTS-TR or ECSSD ship them), the model
    (``saliency_resnet50``, ``saliency_efficientnet_lite0`` or ``SaliencyNet`` with a backbone),
    the augmentation and the optimisation. Writes ``model.safetensors``, checkpoints and logs
    into ``saliency.train.out_dir`` (``{work_dir}/saliency``), resumable like the other training
    stages.

    Args:
        cfg: The configuration.
        overwrite: Train from scratch into a folder that holds another run.

    Returns:
        Summary: as :func:`seenet.pipeline.train_attention`.
    """
    cfg, info, _, paths = start(cfg, data=False)
    section = cfg.saliency
    data = section.data
    if data.root is None:
        raise ValueError(
            "saliency.data.root is required: the folder of a salient-object data set (images and "
            "binary mask PNGs, e.g. MSRA-B or DUTS-TR)"
        )
    t = section.transforms
    dataset = SalientObjectDataset(
        data.root, image_dir=data.image_dir, mask_dir=data.mask_dir,
        image_suffix=data.image_suffix, mask_suffix=data.mask_suffix, split=data.split,
        transform=SaliencyTrainTransform(t.crop_size, tuple(t.scale_range), t.flip),
        seed=cfg.seed,
    )  # fmt: skip
    torch.manual_seed(cfg.seed)
    model = build_model(section.model, "saliency", None)

    def loss_fn(net: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return model.loss(net(batch["image"]), batch["mask"])

    guard_training(cfg, "saliency", paths.saliency, info, overwrite)
    return train_stage(
        cfg, "saliency", section.train, dataset, model, loss_fn, paths.saliency, info
    )


def _maps_dir(layout: DataLayout, out_dir: str | None, key: str) -> Path:
    if out_dir is not None:
        return Path(out_dir)
    if layout.saliency_dir is None:
        raise ValueError(
            f"set data.saliency_dir (the folder proxy-gt reads saliency maps from) or {key}"
        )
    return layout.saliency_dir


class _LoadResized:
    """Loads one image resized for the network, its original size and, for the CRF, its pixels."""

    def __init__(self, layout: DataLayout, input_size: int | None, keep_rgb: bool = False) -> None:
        self.layout, self.input_size, self.keep_rgb = layout, input_size, keep_rgb

    def __call__(self, image_id: str) -> dict[str, Any]:
        image = self.layout.load_image(image_id)
        size = (image.size[1], image.size[0])
        rgb = np.array(image) if self.keep_rgb else None
        if self.input_size is not None:
            image = resize_image(image, self.input_size)
        return {"image": to_tensor(image), "size": size, "rgb": rgb}


def saliency_maps(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Write the trained saliency network's maps of a split as 8-bit grey PNGs.

    Each image is resized to ``saliency_maps.input_size``, the network's probabilities are
    resized back to the image's size and written as ``{id}.png`` (``round(255 · p)``) into
    ``saliency_maps.out_dir``, by default ``data.saliency_dir``: the folder that ``proxy-gt`` and
    :class:`seenet.data.saliency.SaliencyFolder` read, so the rest of the pipeline runs
    unchanged. With ``saliency_maps.crf`` each map is first refined with a fully connected CRF
    on the image (:func:`seenet.crf.refine_saliency`, as DSS refines its maps; needs the ``crf``
    extra). Finished files are skipped while ``run.json`` matches (same weights, same
    settings).

    Args:
        cfg: The configuration.
        overwrite: Replace maps of other weights or settings in the folder.

    Returns:
        Summary: ``total``, ``written``, ``skipped``, ``seconds``, ``out_dir``.
    """
    cfg, info, layout, paths = start(cfg)
    section = cfg.saliency_maps
    if section.crf:
        from ..crf import _import_densecrf, refine_saliency

        _import_densecrf()  # before any work: the error names the extra
    out_dir = _maps_dir(layout, section.out_dir, "saliency_maps.out_dir")
    model = build_model(cfg.saliency.model, "saliency", None, pretrained=False)
    load_weights(model, paths.saliency_weights, "saliency_maps.weights")
    model.to(info.device).eval()
    model_keys = {k: v for k, v in cfg.saliency.model.items() if k != "pretrained"}
    config = {"model": model_keys, "input_size": section.input_size,
              "data": {k: cfg.data[k] for k in ("image_dir", "image_suffix")}}  # fmt: skip
    if section.crf:  # named only when on, so that folders written without it stay current
        config["crf"] = True
    claim_output(out_dir, "saliency-maps", config, {"weights": file_digest(paths.saliency_weights)},
                 ("*.png", "summary.json"), info, overwrite)  # fmt: skip

    def per_item(image_id: str, item: dict[str, Any]) -> None:
        with torch.no_grad():
            probs = model.predict(item["image"][None].to(info.device), size=tuple(item["size"]))
        if not bool(torch.isfinite(probs).all()):
            raise FloatingPointError(f"saliency-maps: the map of {image_id} is not finite")
        saliency = probs[0].cpu()
        if section.crf:
            saliency = refine_saliency(item["rgb"], saliency)
        save_saliency(out_dir / f"{image_id}.png", saliency)

    summary = run_batch_job(
        layout.ids(section.split), per_item, info, desc="saliency maps",
        load=_LoadResized(layout, section.input_size, keep_rgb=section.crf),
        done=lambda i: (out_dir / f"{i}.png").is_file(), num_workers=layout.num_workers,
    )  # fmt: skip
    summary.update(out_dir=str(out_dir), rank=info.rank)
    if info.is_main:
        write_json(out_dir / "summary.json", summary)
    return summary


class _LoadSaliencyPair:
    """Loads one saliency map (a folder's, or the built-in one) and its object mask."""

    def __init__(self, layout: DataLayout, folder: SaliencyFolder | None, label_dir: Path) -> None:
        self.layout, self.folder, self.label_dir = layout, folder, label_dir

    def __call__(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        label = load_label(self.label_dir / f"{image_id}.png")
        mask = (label > 0) & (label <= self.layout.num_classes)
        if self.folder is not None:
            saliency = self.folder.load(image_id, size=label.shape)
        else:
            saliency = frequency_tuned_saliency(self.layout.load_image(image_id))
        return saliency.numpy(), mask


def evaluate_saliency(
    cfg: Config | Mapping[str, Any], *, overwrite: bool = False
) -> dict[str, Any]:
    """Score saliency maps against the objects of the ground truth: MAE, max F, S-measure.

    The maps of ``evaluate_saliency.saliency_dir`` (default ``data.saliency_dir``; when neither
    is set, the built-in frequency-tuned saliency, computed on the fly) are compared with the
    object masks of the split: a pixel is object where its label is a class (1 to
    ``num_classes``; background 0 and unlabelled 255 are not). The metrics are those of
    :class:`seenet.metrics.SaliencyMeter` (as ``pysodmetrics`` computes them: mean absolute error,
    the maximum F-measure with β² = 0.3, the S-measure). Writes ``scores.json``.

    Args:
        cfg: The configuration.
        overwrite: Replace the scores of other maps in the output folder.

    Returns:
        ``{"mae", "max_f", "s_measure", "num_images", "saliency", "seconds"}``.
    """
    from ..metrics import SaliencyMeter

    cfg, info, layout, paths = start(cfg)
    section, out_dir = cfg.evaluate_saliency, paths.evaluate_saliency
    folder = None
    source = "frequency-tuned (built in)"
    if section.saliency_dir is not None or layout.saliency_dir is not None:
        path = layout.inside(section.saliency_dir, layout.saliency_dir)  # type: ignore[arg-type]
        if not path.is_dir():
            raise FileNotFoundError(f"saliency folder not found: {path}")
        folder, source = SaliencyFolder(path), str(path)
    label_dir = layout.inside(section.label_dir, layout.eval_label_dir)
    ids = layout.ids(section.split, layout.val_split)
    inputs = {"saliency": (manifest_digest(folder.root) if folder else None) or source}
    config = {"split": section.split, "label_dir": str(label_dir)}
    claim_output(out_dir, "evaluate-saliency", config, inputs, ("scores.json",), info, overwrite)
    meter = SaliencyMeter()

    def per_item(image_id: str, pair: tuple[np.ndarray, np.ndarray]) -> None:
        meter.update(*pair)

    job = run_batch_job(ids, per_item, info, desc="evaluate saliency",
                        load=_LoadSaliencyPair(layout, folder, label_dir),
                        num_workers=layout.num_workers)  # fmt: skip
    if info.distributed:
        import torch.distributed as dist

        totals = meter.totals.to(info.device)
        dist.all_reduce(totals)
        meter.totals = totals.cpu()
    scores: dict[str, Any] = dict(meter.results())
    scores.update(num_images=len(ids), saliency=source, seconds=job["seconds"], rank=info.rank)
    if info.is_main:
        write_json(out_dir / "scores.json", scores)
    return scores
