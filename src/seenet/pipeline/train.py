"""The training stages: the attention network (``train-attention``) and DeepLab (``train-seg``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import Config, StageTrain, dump_config
from ..data.transforms import AttentionTrainTransform, SegmentationTrainTransform
from ..engine import DistInfo, barrier, fit
from ._batch import build_model, write_json
from ._layout import start
from ._manifest import manifest_digest, prepare_training

__all__ = ["train_attention", "train_seg", "train_stage"]


def guard_training(
    cfg: Config,
    stage: str,
    out_dir: Path,
    info: DistInfo,
    overwrite: bool,
    inputs: Mapping[str, Any] | None = None,
) -> None:
    """Refuse to overwrite or to resume a different run; write the run's manifest.

    See :func:`seenet.pipeline._manifest.prepare_training`; runs before anything is written.
    """
    data = cfg.data.to_dict()
    for where_only in ("root", "num_workers"):  # a moved data set or more workers: same run
        data.pop(where_only)
    config = {"seed": cfg.seed, "data": data, stage: getattr(cfg, stage).to_dict()}
    if stage == "saliency":  # its own data set; the VOC data does not matter
        config.pop("data")
        config[stage]["data"].pop("root")
    section = getattr(cfg, stage).train
    where = {"attention": "train-attention", "segmentation": "train-seg"}.get(
        stage, f"train-{stage}"
    )
    kwargs = dict(resume=section.resume, overwrite=overwrite, where=where)
    prepare_training(out_dir, config, inputs or {}, **kwargs, write=False)  # every process
    if info.is_main:
        prepare_training(out_dir, config, inputs or {}, **kwargs)
    barrier(info)


def train_stage(
    cfg: Config,
    stage: str,
    section: StageTrain,
    dataset: Any,
    model: nn.Module,
    loss_fn: Any,
    out_dir: Path,
    info: DistInfo,
) -> dict[str, Any]:
    """Train ``model`` with the engine and write ``config.yaml`` and ``summary.json``."""
    settings = dataclasses.replace(section, seed=cfg.seed, num_workers=cfg.data.num_workers)
    if info.is_main:
        dump_config(cfg, out_dir / "config.yaml")
    # a model with a schedule of its own (SeeNet's erase_warmup) learns the iteration
    before_step = getattr(model, "set_iteration", None)
    summary = fit(
        model, dataset, loss_fn, settings, out_dir, device=info.device, desc=stage,
        before_step=before_step,
        find_unused_parameters=bool(getattr(model, "erase_warmup", 0)),
    )  # fmt: skip
    summary["num_images"] = len(dataset)
    if info.is_main:
        write_json(out_dir / "summary.json", summary)
    return summary


def train_attention(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Train the self-erasing attention network (paper §3, §5.1) on image-level labels.

    Reads ``data`` and the ``attention`` section (:class:`seenet.config.AttentionConfig`): the
    model (any :class:`seenet.SeeNet` keyword; new layers at ``head_lr_mult`` times the learning
    rate through the model's ``param_groups``), the augmentation and the optimisation.

    Writes into ``attention.train.out_dir`` (``{work_dir}/attention``): ``checkpoint.pt`` (every
    ``checkpoint_every`` iterations, atomically), ``model.safetensors`` (final weights),
    ``metrics.jsonl``, ``config.yaml``, ``summary.json`` and ``run.json`` (provenance). A folder
    holding a trained run is continued with ``attention.train.resume`` (``--resume``; the
    configuration must match the stored one) or replaced with ``overwrite``, never silently.

    Args:
        cfg: The configuration (partial mappings are merged onto the defaults).
        overwrite: Train from scratch into a folder that holds another run (``--overwrite``).

    Returns:
        Summary: ``iterations``, ``final_loss``, ``seconds``, ``images_per_second``, ``weights``
        (path of ``model.safetensors``), ``out_dir``, ``resumed_from`` (iteration or ``None``).
    """
    cfg, info, layout, paths = start(cfg)
    section = cfg.attention
    dataset = layout.image_labels(
        transform=AttentionTrainTransform(**section.transforms.to_dict()), seed=cfg.seed
    )
    torch.manual_seed(cfg.seed)
    model = build_model(section.model, "attention", cfg.data.num_classes)

    def loss_fn(net: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        output = net(batch["image"], batch["labels"])
        return model.loss(output, batch["labels"])

    guard_training(cfg, "attention", paths.attention, info, overwrite)
    return train_stage(
        cfg, "attention", section.train, dataset, model, loss_fn, paths.attention, info
    )


def train_seg(cfg: Config | Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Train DeepLab-LargeFOV on the proxy labels (DeepLab's defaults, paper §5.1).

    Reads ``data`` and the ``segmentation`` section (:class:`seenet.config.SegmentationConfig`).
    The loss is pixel-wise cross-entropy (``ignore_index`` ignored) on the logits upsampled
    bilinearly to the crop size. ``segmentation.label_dir`` (default: the proxy stage's output)
    holds the training labels; the path of ``SegmentationClassAug`` gives the fully supervised
    upper bound.

    Args:
        cfg: The configuration.
        overwrite: As in :func:`train_attention`.

    Returns:
        Summary: as :func:`train_attention`.
    """
    cfg, info, layout, paths = start(cfg)
    section = cfg.segmentation
    label_dir = paths.seg_labels.resolve()
    if not label_dir.is_dir():
        raise FileNotFoundError(
            f"segmentation.label_dir not found: {label_dir} (run proxy-gt first)"
        )
    transforms = section.transforms.to_dict()
    ignore_index = int(transforms["ignore_index"])
    dataset = layout.segmentation(
        label_dir, transform=SegmentationTrainTransform(**transforms), seed=cfg.seed
    )
    torch.manual_seed(cfg.seed)
    model = build_model(section.model, "segmentation", cfg.data.num_classes + 1)

    def loss_fn(net: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        logits = net(batch["image"])
        target = batch["label"]
        logits = F.interpolate(
            logits, size=target.shape[-2:], mode="bilinear", align_corners=False
        )
        return F.cross_entropy(logits.float(), target, ignore_index=ignore_index)

    labels = manifest_digest(label_dir) or str(label_dir)
    guard_training(cfg, "segmentation", paths.segmentation, info, overwrite, {"labels": labels})
    return train_stage(
        cfg, "segmentation", section.train, dataset, model, loss_fn, paths.segmentation, info
    )
