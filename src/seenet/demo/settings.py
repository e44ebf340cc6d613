"""The demo's settings: sizes and training lengths, the presets, the pipeline configuration."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["DemoSettings", "PRESETS", "demo_config", "resolve_settings"]


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and training lengths of one demo run (and of ``seenet ablate``).

    Attributes:
        size: Image side in pixels (square images).
        num_train: Training images (``train_aug``), also the images whose maps are scored.
        num_val: Validation images, for the segmentation network's score.
        max_objects: Up to this many objects per image.
        context_prob: Probability that an image's background is its first object's class
            context.
        attention_iterations: SGD iterations of each attention network (paper: 25,000). 1,080
            rather than 360: on selection seeds 10-12 it raised every method's attention mIoU
            (CAM 47.5 -> 48.9, ACoL 49.4 -> 49.9, SeeNet 43.7 -> 49.3) and proxy labels; the
            demo runs its two methods side by side to stay within 10 minutes.
        attention_batch: Batch size of the attention networks (paper: 16).
        attention_lr: Base learning rate of the attention networks (new layers at the model's
            ``head_lr_mult``). The paper's 1e-3 is for 25,000 iterations; a few hundred need a
            larger one.
        clip_grad_norm: Cap on the global gradient norm of every training step (``None``: off, as
            the paper). The short, steep schedules of the demo need it: without it S_B's loss
            spikes in the first iterations and takes the shared backbone with it.
        hidden_channels: Width of each attention branch's 3x3 convolutions (paper: 512).
        num_convs: 3x3 convolutions per attention branch (paper: 3; the authors' network: 2).
        feature_index: The backbone level the attention network reads (2: stride 8, so that
            112-pixel images give 14x14 maps as 224-pixel images do at VGG16's stride 16).
        attention_options: Other :class:`seenet.SeeNet` keywords, for experiments; the demo
            uses the model's defaults.
        saliency_images: Images of the synthetic salient-object training set.
        saliency_iterations: SGD iterations of the saliency network (400 with the base rate
            0.03). Without the CRF, 600 was the shortest run whose maps made better proxy labels
            than frequency-tuned saliency for both CAM and SeeNet; with it, 400 did as well as
            600 on selection seeds 10-12 (maximum F-measure 0.903 against 0.895, proxy labels
            CAM 78.4 against 78.3, SeeNet 78.8 against 78.6) in two thirds of the time.
        saliency_batch: Its batch size.
        saliency_lr: Its base learning rate.
        saliency_loss: Its loss (:meth:`seenet.SaliencyNet.loss`). ``"bce_iou"`` (BCE plus
            BASNet's soft IoU) was chosen over ``"bce"`` on selection seeds 10 and 11: maximum
            F-measure 0.84 / 0.83 against 0.79 / 0.78, MAE 0.053 / 0.057 against 0.082 /
            0.090, and proxy labels 5 to 8 points higher for CAM and SeeNet alike.
        saliency_crf: Refine the saliency maps with a fully connected CRF, as DSS does at
            inference (``saliency_maps.crf``; needs the ``crf`` extra). On selection seeds
            10-12 it raised maximum F-measure from 0.83 to 0.90, lowered MAE from 0.062 to
            0.036 and raised the proxy labels by 7 to 8 points for CAM and SeeNet alike.
        seg_iterations: SGD iterations of each DeepLab-LargeFOV (DeepLab: 20,000).
        seg_batch: Batch size of DeepLab-LargeFOV.
        seg_lr: Base learning rate of DeepLab-LargeFOV (classifier 10x; DeepLab: 1e-3 for
            20,000 iterations).
        seg_hidden_channels: Width of DeepLab-LargeFOV's fc6 and fc7 (1024 in DeepLab).
        seg_dilation: Dilation of fc6 (12 in DeepLab for 321-pixel crops; smaller for 112).
        seg_dropout: Dropout after fc6 and fc7 (0.5 in DeepLab for 1024-channel layers; none
            for narrow layers and short runs).
        seg_feature_index: The backbone level DeepLab-LargeFOV reads (``None``: the deepest,
            dilated to stride 8, as DeepLab). The demo taps level 2 (stride 8, as its attention
            network does) and drops the deeper stages: at the deepest level the network cost
            five times as much per iteration and, within the demo's budget, still labelled
            most object pixels as background even when trained on the true masks.
        seg_crf: Also score each DeepLab-LargeFOV with DeepLab's fully connected CRF, as the paper
            reports its segmentation results (``evaluate.crf``; needs the ``crf`` extra). Both
            scores go to ``metrics.json``.
        figures: Number of example images in each figure of the report.
        num_workers: Data-loading processes per stage (0: in the main process).
        channels_last: Keep the weights in the channels-last memory format (faster on a CPU).
    """

    size: int = 112
    num_train: int = 400
    num_val: int = 100
    max_objects: int = 3
    context_prob: float = 0.8
    attention_iterations: int = 1080
    attention_batch: int = 16
    attention_lr: float = 0.04
    clip_grad_norm: float | None = 2.0
    hidden_channels: int = 64
    num_convs: int = 2
    feature_index: int = 2
    attention_options: dict = field(default_factory=dict)
    saliency_images: int = 600
    saliency_iterations: int = 400
    saliency_batch: int = 8
    saliency_lr: float = 0.03
    saliency_loss: str = "bce_iou"
    saliency_crf: bool = True
    seg_iterations: int = 300
    seg_batch: int = 8
    seg_lr: float = 0.03
    seg_hidden_channels: int = 128
    seg_dilation: int = 4
    seg_dropout: float = 0.0
    seg_feature_index: int | None = 2
    seg_crf: bool = True
    figures: int = 4
    num_workers: int = 0
    channels_last: bool = True


#: Named settings: ``"full"`` (``seenet demo``), ``"quick"`` (``--quick``) and ``"tiny"`` (a
#: seconds-long smoke run for tests; its numbers mean nothing).
PRESETS: dict[str, DemoSettings] = {
    "full": DemoSettings(),
    "quick": DemoSettings(
        num_train=160, num_val=40, attention_iterations=120, saliency_images=200,
        saliency_iterations=200, seg_iterations=150, figures=3,
        seg_crf=False,  # after 150 iterations the CRF lowered both scores (38.1 -> 37.6 and
        # 37.6 -> 36.0)
    ),
    "tiny": DemoSettings(
        size=64, num_train=16, num_val=4, max_objects=1, attention_iterations=20,
        attention_batch=4, hidden_channels=32, saliency_images=16, saliency_iterations=10,
        saliency_batch=4, seg_iterations=30, seg_batch=4, seg_hidden_channels=32,
        clip_grad_norm=None, seg_dilation=2, figures=2,
    ),
}  # fmt: skip


def demo_config(
    data_root: str | os.PathLike,
    work_dir: str | os.PathLike,
    erase_mode: str,
    settings: DemoSettings,
    weights: str | os.PathLike | bool = True,
    seed: int = 0,
    saliency_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """The pipeline configuration of one demo branch (read by :mod:`seenet.pipeline`).

    Args:
        data_root: The synthetic VOC tree.
        work_dir: Where the stages write (``attention/``, ``maps/``, ``proxy_gt/``, ...).
        erase_mode: ``"cam"``, ``"acol"``, ``"zero"`` or ``"seenet"``.
        settings: Sizes and training lengths.
        weights: ``True`` for the ImageNet weights of ``efficientnet_lite0`` that an installed
            package ships, ``False``, or a weights file.
        seed: Seed of the weights of new layers, data order and augmentation.
        saliency_dir: Saliency PNGs for the proxy labels (``None``: the built-in saliency).
        resume: Continue interrupted training runs (``seenet ablate`` continues where it
            stopped).

    Returns:
        A partial configuration (merged onto :class:`seenet.config.Config` by the stages).
    """
    s = settings
    pretrained = weights if isinstance(weights, bool) else os.fspath(weights)
    train = {
        "momentum": 0.9, "schedule": "poly", "poly_power": 0.9, "lr_steps": [],
        "checkpoint_every": 10**6, "deterministic": True, "clip_grad_norm": s.clip_grad_norm,
        "channels_last": s.channels_last, "resume": resume,
    }  # fmt: skip

    def section(iterations: int, **values: Any) -> dict[str, Any]:
        return {**train, "iterations": iterations,
                "log_every": max(1, min(20, iterations // 5)), **values}  # fmt: skip

    return {
        "work_dir": os.fspath(work_dir),
        "seed": seed,
        "device": "cpu",
        "data": {
            "root": os.fspath(data_root),
            "train_split": "train_aug",
            "val_split": "val",
            "saliency_dir": None if saliency_dir is None else os.fspath(saliency_dir),
            "num_classes": 20,
            "num_workers": s.num_workers,
        },
        "attention": {
            "model": {
                "name": "seenet_efficientnet_lite0", "pretrained": pretrained,
                "erase_mode": erase_mode, "hidden_channels": s.hidden_channels,
                "num_convs": s.num_convs, "feature_index": s.feature_index,
                **s.attention_options,
            },
            "transforms": {"scale_range": [s.size, round(s.size * 1.25)], "crop_size": s.size,
                           "flip": True},
            "train": section(s.attention_iterations, batch_size=s.attention_batch,
                             lr=s.attention_lr, weight_decay=2e-4),
        },
        "maps": {"input_size": s.size, "flip": True, "labels": "gt"},
        "segmentation": {
            "model": {
                "name": "deeplab_largefov_efficientnet_lite0", "pretrained": pretrained,
                "num_classes": 21, "hidden_channels": s.seg_hidden_channels,
                "dilation": s.seg_dilation, "dropout": s.seg_dropout,
                "feature_index": s.seg_feature_index,
            },
            "transforms": {"scale_range": [0.75, 1.25], "crop_size": s.size, "flip": True},
            "train": section(s.seg_iterations, batch_size=s.seg_batch, lr=s.seg_lr,
                             weight_decay=5e-4),
        },
        "saliency": {
            "model": {"name": "saliency_efficientnet_lite0", "pretrained": pretrained,
                      "decoder_channels": 32, "loss": s.saliency_loss},
            "transforms": {"crop_size": s.size, "scale_range": [0.75, 1.25], "flip": True},
            "train": section(s.saliency_iterations, batch_size=s.saliency_batch,
                             lr=s.saliency_lr, weight_decay=5e-4),
        },
        "saliency_maps": {"input_size": s.size, "crf": s.saliency_crf},
        "evaluate_maps": {"split": "train_aug", "label_dir": "SegmentationClassAug"},
        "evaluate_labels": {"split": "train_aug", "label_dir": "SegmentationClassAug"},
    }  # fmt: skip


def resolve_settings(preset: str | DemoSettings, overrides: dict[str, Any]) -> DemoSettings:
    """A preset by name (or settings) with some fields changed; unknown names are errors."""
    if isinstance(preset, DemoSettings):
        settings = preset
    elif preset in PRESETS:
        settings = PRESETS[preset]
    else:
        raise ValueError(
            f"preset must be one of {sorted(PRESETS)} or a DemoSettings, got {preset!r}"
        )
    unknown = set(overrides) - set(asdict(settings))
    if unknown:
        raise ValueError(f"unknown demo settings: {sorted(unknown)}")
    return replace(settings, **overrides)
