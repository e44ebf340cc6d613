"""The demo's steps and :func:`run_demo`, which runs them and writes the metrics and report."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write
from .jobs import Task, run_tasks
from .report import figures as make_figures
from .report import pct, write_report
from .settings import DemoSettings, demo_config, resolve_settings

__all__ = [
    "run_demo", "make_data", "prepare_saliency", "run_mode", "score_branches", "stage_progress",
    "floor_miou",
]  # fmt: skip


def make_data(root: Path, settings: DemoSettings, seed: int) -> dict[str, Any]:
    """The synthetic VOC tree of one run."""
    from ..data.synthetic import make_synthetic_voc

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
    from .. import pipeline
    from ..data.synthetic_sod import make_synthetic_sod

    sod = work / "saliency_data"
    make_synthetic_sod(sod, num_images=settings.saliency_images, size=settings.size, seed=seed)
    saliency_dir = data_root / "Saliency"
    cfg = demo_config(
        data_root, work, "cam", settings, seed=seed, saliency_dir=saliency_dir, resume=resume
    )
    cfg["saliency"]["data"] = {"root": os.fspath(sod)}
    pipeline.train_saliency(cfg)
    for split in ("train_aug", "val"):
        pipeline.saliency_maps(
            {**cfg, "saliency_maps": {**cfg["saliency_maps"], "split": split}}
        )
    scores = {}
    for name, folder in (("trained", saliency_dir), ("frequency_tuned", None)):
        c = {
            **cfg,
            "data": {**cfg["data"], "saliency_dir": None if folder is None else os.fspath(folder)},
            "evaluate_saliency": {
                "split": "val",
                "label_dir": "SegmentationClass",
                "out_dir": os.fspath(work / f"saliency_scores_{name}"),
            },
        }
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
        evaluate scores (with ``segmentation``), "segmentation_crf": the same with DeepLab's CRF
        (with ``segmentation`` and ``settings.seg_crf``)}``.
    """
    from .. import pipeline

    cfg = demo_config(
        data_root, work, mode, settings, seed=seed, saliency_dir=saliency_dir, resume=resume
    )
    pipeline.train_attention(cfg)
    pipeline.attention_maps(cfg)
    out = {"attention": pipeline.evaluate_maps(cfg)}
    pipeline.proxy_gt(cfg)
    out["proxy_gt"] = pipeline.evaluate_labels(cfg)
    if saliency_dir is not None:  # the same maps with the built-in saliency, for comparison
        ft = {
            **cfg,
            "data": {**cfg["data"], "saliency_dir": None},
            "proxy": {"out_dir": os.fspath(work / "proxy_gt_frequency_tuned")},
            "evaluate_labels": {
                **cfg["evaluate_labels"],
                "labels_dir": os.fspath(work / "proxy_gt_frequency_tuned"),
                "out_dir": os.fspath(work / "evaluate_labels_frequency_tuned"),
            },
        }
        pipeline.proxy_gt(ft)
        out["proxy_gt_frequency_tuned"] = pipeline.evaluate_labels(ft)
    if segmentation:
        pipeline.train_seg(cfg)
        out["segmentation"] = pipeline.evaluate({**cfg, "evaluate": {"save_predictions": True}})
        if settings.seg_crf:  # the paper's segmentation scores are after DeepLab's CRF
            crf = {"crf": True, "out_dir": os.fspath(work / "evaluation_crf")}
            out["segmentation_crf"] = pipeline.evaluate({**cfg, "evaluate": crf})
    return out


def score_branches(
    data_root: Path, work: Path, mode: str, settings: DemoSettings, seed: int
) -> dict[str, dict[str, Any]]:
    """Score S_A's and S_B's maps alone, of an erasing mode's trained run (after :func:`run_mode`).

    Writes ``maps_a``/``maps_b`` and ``evaluate_maps_a``/``evaluate_maps_b`` next to the run's
    fused maps.

    Returns:
        ``{"a": evaluate-maps scores, "b": evaluate-maps scores}``.
    """
    from .. import pipeline

    if mode == "cam":
        raise ValueError("mode: 'cam' has one branch; its maps are S_A's")
    cfg = demo_config(data_root, work, mode, settings, seed=seed)
    out = {}
    for branch in ("a", "b"):
        maps_dir = os.fspath(work / f"maps_{branch}")
        one = {
            **cfg,
            "maps": {**cfg["maps"], "branch": branch, "out_dir": maps_dir},
            "evaluate_maps": {**cfg["evaluate_maps"], "maps_dir": maps_dir,
                              "out_dir": os.fspath(work / f"evaluate_maps_{branch}")},
        }  # fmt: skip
        pipeline.attention_maps(one)
        out[branch] = pipeline.evaluate_maps(one)
    return out


def floor_miou(data_root: Path, split: str, folder: str = "SegmentationClass") -> float:
    """Mean IoU of predicting background everywhere: the floor every method must clear."""
    from ..data.voc import load_label, read_split
    from ..metrics import ConfusionMatrix

    cm = ConfusionMatrix(21)
    for image_id in read_split(data_root, split):
        target = load_label(data_root / folder / f"{image_id}.png").astype(np.int64)
        cm.update(np.zeros_like(target), target)
    return cm.miou()


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


def stage_progress(work: Path) -> str | None:
    """Where a run's training has got to: the last logged iteration of its newest stage.

    Reads the ``metrics.jsonl`` of ``work``'s ``segmentation``, ``attention`` or ``saliency``
    folder (the first that exists, in that order); ``None`` before any.
    """
    for stage, name in (("segmentation", "DeepLab"), ("attention", "attention network"),
                        ("saliency", "saliency network")):  # fmt: skip
        path = Path(work) / stage / "metrics.jsonl"
        if path.is_file():
            try:
                last = path.read_text().strip().splitlines()[-1]
                return f"{name} at iteration {json.loads(last)['iteration']}"
            except (IndexError, ValueError, KeyError, OSError):
                return f"{name} starting"
    return None


def _logger(log: Callable[[str], None] | None, steps: int) -> Callable[[int, str], None]:
    start = time.perf_counter()
    write = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def step(i: int, text: str) -> None:
        write(f"[demo {i}/{steps} · {time.perf_counter() - start:5.0f} s] {text}")

    return step


def require_crf(alternative: str) -> None:
    """Fail before any work when pydensecrf is missing, naming the extra and ``alternative``."""
    from ..crf import _import_densecrf

    try:
        _import_densecrf()
    except ImportError as e:
        raise ImportError(f"{e}; or {alternative}") from e


def run_demo(
    out_dir: str | os.PathLike,
    preset: str | DemoSettings = "full",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    jobs: int = 1,
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
        jobs: With 2, CAM's and SeeNet's stages run side by side in two worker processes that
            share the threads (:func:`seenet.demo.jobs.run_tasks`): about 80 % of the time on
            2 cores, without progress bars for those stages.
        **overrides: :class:`DemoSettings` fields to change.

    Returns:
        The metrics written to ``metrics.json``.
    """
    from ..models import lite0_package_file

    lite0_package_file()  # fail early, naming the package, when it is not installed
    settings = resolve_settings(preset, overrides)
    if settings.saliency_crf or settings.seg_crf:
        require_crf("leave out the CRF, which refines the saliency maps and scores the "
                    "segmentation networks as the paper does (saliency_crf=False, "
                    "seg_crf=False; `seenet demo --no-crf`)")  # fmt: skip
    out = _prepare_output(Path(out_dir))
    data_root, runs = out / "data", out / "runs"
    step = _logger(log, 6)
    seconds: dict[str, float] = {}
    began = time.perf_counter()

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        result = fn()
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
        return result

    s = settings
    step(1, f"synthetic data: {s.num_train} train + {s.num_val} val images")
    info = timed("data", lambda: make_data(data_root, s, seed))
    step(2, f"saliency network on {s.saliency_images} synthetic salient-object images")
    saliency_dir, saliency = timed(
        "saliency", lambda: prepare_saliency(out / "saliency", data_root, s, seed)
    )
    what = (f"attention network ({s.attention_iterations} iterations), maps, proxy labels, "
            f"DeepLab ({s.seg_iterations} iterations)")  # fmt: skip
    tasks = [Task(m, repr(m), run_mode, (data_root, runs / m, m, s, seed, saliency_dir))
             for m in ("cam", "seenet")]  # fmt: skip
    if jobs == 1:
        results = {}
        for i, task in enumerate(tasks):
            step(3 + i, f"{task.label} {what}")
            results[task.key] = timed(task.key, lambda task=task: task.fn(*task.args))
    else:
        step(3, f"'cam' and 'seenet' side by side ({jobs} processes): {what}; a line every "
                "30 s")
        results = timed("cam + seenet", lambda: run_tasks(
            tasks, jobs, log=lambda text: step(3, text), prefix=None,
            status=lambda task: stage_progress(task.args[1])))  # fmt: skip
        step(4, "'cam' and 'seenet' done")
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
            **({"miou_crf": results["seenet"]["segmentation_crf"]["miou"],
                "cam_miou_crf": results["cam"]["segmentation_crf"]["miou"]}
               if s.seg_crf else {}),
        },
        "saliency": {k: {"mae": v["mae"], "max_f": v["max_f"]} for k, v in saliency.items()},
    }  # fmt: skip
    with atomic_write(out / "metrics.json", "w") as f:
        json.dump(metrics, f, indent=2)
    from ..data.voc import read_split

    figures = timed("report", lambda: make_figures(
        out, data_root, runs, read_split(data_root, "train_aug")[: s.figures],
        read_split(data_root, "val")[: s.figures]))  # fmt: skip
    cam, see = results["cam"], results["seenet"]
    write_report(out / "report.md", {
        "num_train": s.num_train, "num_val": s.num_val, "size": s.size, "seed": seed,
        "classes": ", ".join(info["classes"]),
        "att_cam": pct(cam["attention"]["miou"]), "att_seenet": pct(see["attention"]["miou"]),
        "t_cam": f"{cam['attention']['threshold']:.2f}",
        "t_seenet": f"{see['attention']['threshold']:.2f}",
        "obj_cam": pct(cam["attention"]["object_coverage"]),
        "obj_seenet": pct(see["attention"]["object_coverage"]),
        "bg_cam": pct(cam["attention"]["background_coverage"]),
        "bg_seenet": pct(see["attention"]["background_coverage"]),
        "proxy_cam": pct(cam["proxy_gt"]["miou"]), "proxy_seenet": pct(see["proxy_gt"]["miou"]),
        "proxy_ft_cam": pct(cam["proxy_gt_frequency_tuned"]["miou"]),
        "proxy_ft_seenet": pct(see["proxy_gt_frequency_tuned"]["miou"]),
        "seg_cam": pct(cam["segmentation"]["miou"]),
        "seg_seenet": pct(see["segmentation"]["miou"]), "floor": pct(floor),
        "seg_crf_row": (f"| the same, scored after DeepLab's CRF (as the paper reports) | "
                        f"{pct(cam['segmentation_crf']['miou'])} | "
                        f"{pct(see['segmentation_crf']['miou'])} |\n") if s.seg_crf else "",
        "sal_crf": ", CRF-refined" if s.saliency_crf else "",
        "sal_mae": f"{saliency['trained']['mae']:.3f}",
        "sal_f": f"{saliency['trained']['max_f']:.3f}",
        "ft_mae": f"{saliency['frequency_tuned']['mae']:.3f}",
        "ft_f": f"{saliency['frequency_tuned']['max_f']:.3f}",
        "fig_train": figures["training"], "fig_val": figures["validation"],
        "seconds": ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()),
        "total": f"{time.perf_counter() - began:.0f}", "settings": json.dumps(asdict(s)),
    })  # fmt: skip
    step(6, f"done: attention CAM {pct(metrics['attention']['cam']['miou'])} % vs SeeNet "
            f"{pct(metrics['attention']['seenet']['miou'])} %; proxy labels "
            f"{pct(metrics['proxy_gt']['cam']['miou'])} % vs "
            f"{pct(metrics['proxy_gt']['seenet']['miou'])} %; segmentation "
            f"{pct(metrics['segmentation']['cam_miou'])} % vs "
            f"{pct(metrics['segmentation']['miou'])} % (floor {pct(floor)} %) -> "
            f"{out / 'report.md'}")  # fmt: skip
    return metrics
