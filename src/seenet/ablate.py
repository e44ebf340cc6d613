"""The paper's Table 1 on the built-in data, over seeds: ``seenet ablate``.

For every seed ``s``, :func:`run_ablation` draws a synthetic data set and a saliency network
(as the demo does, :mod:`seenet.demo`), then trains the attention network in each erasing mode
(``cam``, ``acol``, ``zero``, ``seenet``) with the demo's settings, on the same images, and scores
its maps and proxy labels. Seed ``s`` seeds the data and every training run of that seed. The
results go to ``ablation.json``::

    {"settings": {...},
     "runs": [{"mode", "seed", "attention": {"miou", "threshold"},
               "proxy_gt": {"miou", "miou_frequency_tuned"},
               "context_share", "object_coverage", "background_coverage", "curve"}, ...],
     "summary": {mode: {"attention_miou_mean", "attention_miou_std", "proxy_gt_miou_mean",
                        "proxy_gt_miou_std", "proxy_gt_frequency_tuned_miou_mean", "seeds"}}}

With ``branches=True`` (``--branches``) every run of an erasing mode also scores the maps of
S_A alone and of S_B alone: its row gains ``"branches": {"a": {"miou", "threshold",
"context_share", "object_coverage", "background_coverage"}, "b": {...}}``, its mode's summary
``branch_a_miou_mean`` and ``branch_b_miou_mean``, and ``ablation.md`` a table of what each
branch contributes to the fused maps. Asked for on a finished ablation, it adds them without
training again.

``context_share`` is the fraction of the attention maps' mass that lies on background pixels (the
class contexts around the objects), ``object_coverage`` and ``background_coverage`` the fractions
of object and background pixels the maps mark at the best threshold. Proxy labels use the
trained saliency network; ``miou_frequency_tuned`` scores those of the same maps with the built-in
frequency-tuned saliency. ``ablation.md`` holds the
mean ± std table and the per-seed rows, ``curves.png`` every mode's mean threshold curve.

An interrupted ablation continues where it stopped when run again with the same arguments.

Example:
    >>> parse_option("feature_policy=linear"), parse_option("attention_lr=0.02")
    (('attention_options', {'feature_policy': 'linear'}), ('attention_lr', 0.02))
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import yaml

from ._io import atomic_write
from .demo import (
    DemoSettings,
    make_data,
    prepare_saliency,
    resolve_settings,
    run_mode,
    score_branches,
    stage_progress,
)
from .demo.jobs import Task, run_tasks
from .demo.report import pct
from .demo.run import require_crf

__all__ = ["MODES", "run_ablation", "parse_option"]

#: Relative cost of one training run of each mode (two erasing branches cost most), for ordering.
_RUN_COST = {"seenet": 3, "zero": 3, "acol": 2, "cam": 1}

#: The erasing modes of the paper's Table 1 and the CAM baseline, in table order.
MODES = ("cam", "acol", "zero", "seenet")
_NAMES = {"cam": "CAM", "acol": "ACoL (setting 1)", "zero": "no sign flip (setting 2)",
          "seenet": "SeeNet (setting 3)"}  # fmt: skip


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value``: a :class:`~seenet.demo.DemoSettings` field, or a :class:`seenet.SeeNet` one.

    Returns:
        ``(field, value)``; SeeNet keywords come back as ``("attention_options", {key: value})``.
    """
    if "=" not in text:
        raise ValueError(f"option {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 1e-3 as a string
        except ValueError:
            pass
    if key in {f.name for f in fields(DemoSettings)}:
        return key, value
    return "attention_options", {key: value}


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)
    return mean, math.sqrt(var)


def _summary(runs: list[dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    out = {}
    for mode in modes:
        mine = [r for r in runs if r["mode"] == mode]
        if not mine:
            continue
        att = _mean_std([r["attention"]["miou"] for r in mine])
        proxy = _mean_std([r["proxy_gt"]["miou"] for r in mine])
        ctx = _mean_std([r["context_share"] for r in mine])
        ft = [r["proxy_gt"].get("miou_frequency_tuned") for r in mine]
        out[mode] = {
            "attention_miou_mean": att[0], "attention_miou_std": att[1],
            "proxy_gt_miou_mean": proxy[0], "proxy_gt_miou_std": proxy[1],
            "proxy_gt_frequency_tuned_miou_mean": (
                None if None in ft else _mean_std(ft)[0]),
            "context_share_mean": ctx[0], "seeds": [r["seed"] for r in mine],
        }  # fmt: skip
        if all("branches" in r for r in mine):
            for b in ("a", "b"):
                values = [r["branches"][b]["miou"] for r in mine]
                out[mode][f"branch_{b}_miou_mean"] = (
                    None if None in values else _mean_std(values)[0])  # fmt: skip
    return out


def _share(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _branch_scores(scores: dict[str, Any]) -> dict[str, Any]:
    keys = ("miou", "threshold", "context_share", "object_coverage", "background_coverage")
    return {k: scores[k] for k in keys}


def _write_markdown(path: Path, result: dict[str, Any], modes: Sequence[str]) -> None:
    s, runs = result["summary"], result["runs"]
    lines = [
        "# Ablation on synthetic data (paper Table 1)",
        "",
        f"Seeds {', '.join(str(x) for x in result['seeds'])}; settings: the demo's "
        f"`{result['preset']}` preset" + (f" with {result['options']}" if result["options"] else "")
        + ". mIoU in %, mean ± standard deviation over the seeds.",
        "",
        "| setting | attention mIoU | proxy labels mIoU | proxy labels, frequency-tuned "
        "saliency | context share |",
        "|---|---|---|---|---|",
    ]
    for mode in modes:
        if mode in s:
            m = s[mode]
            lines.append(
                f"| {_NAMES[mode]} | {100 * m['attention_miou_mean']:.1f} ± "
                f"{100 * m['attention_miou_std']:.1f} | {100 * m['proxy_gt_miou_mean']:.1f} ± "
                f"{100 * m['proxy_gt_miou_std']:.1f} | "
                f"{pct(m['proxy_gt_frequency_tuned_miou_mean'])} | "
                f"{m['context_share_mean']:.3f} |"
            )
    lines += [
        "",
        "Per seed:",
        "",
        "| seed | setting | attention mIoU (t) | proxy labels mIoU | context share | objects "
        "reached (%) | background reached (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["seed"], modes.index(r["mode"]))):
        lines.append(
            f"| {r['seed']} | {_NAMES[r['mode']]} | {100 * r['attention']['miou']:.1f} "
            f"({r['attention']['threshold']:.2f}) | {100 * r['proxy_gt']['miou']:.1f} | "
            f"{r['context_share']:.3f} | {100 * r['object_coverage']:.1f} | "
            f"{100 * r['background_coverage']:.1f} |"
        )
    with_branches = [r for r in runs if "branches" in r]
    if with_branches:
        lines += [
            "",
            "What each branch contributes (attention mIoU of S_A's maps alone, S_B's alone and "
            "the fused maps; context share in brackets):",
            "",
            "| seed | setting | S_A alone | S_B alone | fused |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(with_branches, key=lambda r: (r["seed"], modes.index(r["mode"]))):
            a, b = r["branches"]["a"], r["branches"]["b"]
            lines.append(
                f"| {r['seed']} | {_NAMES[r['mode']]} | {pct(a['miou'])} "
                f"({_share(a['context_share'])}) | {pct(b['miou'])} "
                f"({_share(b['context_share'])}) | {pct(r['attention']['miou'])} "
                f"({_share(r['context_share'])}) |"
            )
        for mode in modes:
            if "branch_a_miou_mean" in s.get(mode, {}):
                m = s[mode]
                lines.append(
                    f"| mean | {_NAMES[mode]} | {pct(m['branch_a_miou_mean'])} | "
                    f"{pct(m['branch_b_miou_mean'])} | {pct(m['attention_miou_mean'])} |"
                )
    lines += ["", "![threshold curves](curves.png)", ""]
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines))


def _prepare_seed(out: Path, seed: int, settings: DemoSettings) -> None:
    """A seed's data set and saliency maps (the saliency network is trained once per seed)."""
    base = out / f"seed{seed}"
    make_data(base / "data", settings, seed)
    saliency_file = base / "saliency" / "scores.json"
    if not saliency_file.is_file():
        _, scores = prepare_saliency(base / "saliency", base / "data", settings, seed, resume=True)
        with atomic_write(saliency_file, "w") as f:
            json.dump(scores, f)


def _run_one(
    out: Path, seed: int, mode: str, settings: DemoSettings, branches: bool
) -> dict[str, Any]:
    """One mode of one seed: trained, scored and stored in ``result.json`` (reused when there)."""
    base = out / f"seed{seed}"
    data_root = base / "data"
    result_file = base / mode / "result.json"
    stored = result_file.is_file()
    if stored:
        run = json.loads(result_file.read_text())
    else:
        r = run_mode(data_root, base / mode, mode, settings, seed, data_root / "Saliency",
                     segmentation=False, resume=True)  # fmt: skip
        att = r["attention"]
        run = {
            "mode": mode, "seed": seed,
            "attention": {"miou": att["miou"], "threshold": att["threshold"]},
            "proxy_gt": {"miou": r["proxy_gt"]["miou"],
                         "miou_frequency_tuned": r["proxy_gt_frequency_tuned"]["miou"]},
            "context_share": att["context_share"],
            "object_coverage": att["object_coverage"],
            "background_coverage": att["background_coverage"],
            "curve": att["curve"],
        }  # fmt: skip
    missing = branches and mode != "cam" and "branches" not in run
    if missing:
        scores = score_branches(data_root, base / mode, mode, settings, seed)
        run["branches"] = {b: _branch_scores(v) for b, v in scores.items()}
    if missing or not stored:
        with atomic_write(result_file, "w") as f:
            json.dump(run, f, indent=2)
    return run


def run_ablation(
    out_dir: str | os.PathLike,
    modes: Sequence[str] = ("cam", "acol", "seenet"),
    seeds: Sequence[int] = (0, 1, 2),
    preset: str | DemoSettings = "full",
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
    branches: bool = False,
    jobs: int = 1,
    **overrides: Any,
) -> dict[str, Any]:
    """Train and score every mode on every seed; write ``ablation.json``, ``.md`` and a PNG.

    Args:
        out_dir: Output folder; ``seed<s>/`` holds each seed's data, saliency and runs.
        modes: Erasing modes from :data:`MODES`.
        seeds: Seeds (data and training).
        preset: The demo's preset (:data:`seenet.demo.PRESETS`) or settings.
        log: Receives one line per step (default: stderr).
        overwrite: Start again in a folder that holds an ablation with other settings.
        branches: Also score S_A's and S_B's maps alone, for the erasing modes.
        jobs: Training runs side by side, in worker processes that share the threads
            (:func:`seenet.demo.jobs.run_tasks`; 2 on 2 cores takes about 80 % of the time of 1).
        **overrides: :class:`~seenet.demo.DemoSettings` fields to change (``attention_options``
            for :class:`seenet.SeeNet` keywords).

    Returns:
        What ``ablation.json`` holds.
    """
    from .viz import plot_curves, save_png

    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {list(modes)}")
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers, got {list(seeds)}")
    settings = resolve_settings(preset, overrides)
    if settings.saliency_crf:
        require_crf("leave out the CRF refinement of the saliency maps "
                    "(--option saliency_crf=false)")  # fmt: skip
    out = Path(out_dir)
    stamp = {"settings": asdict(settings), "modes": list(modes)}
    stamp_file = out / "ablation-settings.json"
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) != json.loads(
        json.dumps(stamp)
    ):
        if not overwrite:
            raise ValueError(
                f"{out} holds an ablation with other settings; pass --overwrite to start again "
                "or choose another folder"
            )
        for child in out.glob("seed*"):
            shutil.rmtree(child)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(stamp_file, "w") as f:
        json.dump(stamp, f, indent=2)
    write = log or (lambda line: print(line, file=sys.stderr, flush=True))
    start = time.perf_counter()
    tasks, folders = [], {}  # folders: where each task's training logs its progress
    for seed in seeds:
        tasks.append(Task(f"data{seed}", f"seed {seed}: data and saliency network",
                          _prepare_seed, (out, seed, settings)))  # fmt: skip
        folders[f"data{seed}"] = out / f"seed{seed}" / "saliency"
    # every seed's data first, then the longest runs, so that no long run is left alone at the
    # end while the other workers idle (measured with 2 jobs: seenet 310-340 s, acol 285-305 s,
    # cam 235-250 s)
    for mode in sorted(modes, key=lambda m: -_RUN_COST[m]):
        for seed in seeds:
            tasks.append(Task(f"{mode}{seed}", f"seed {seed}: {mode}", _run_one,
                              (out, seed, mode, settings, branches), after=(f"data{seed}",)))
            folders[f"{mode}{seed}"] = out / f"seed{seed}" / mode
    done = run_tasks(tasks, jobs, write, "ablate", start,
                     status=lambda task: stage_progress(folders[task.key]))  # fmt: skip
    runs = [done[f"{mode}{seed}"] for seed in seeds for mode in modes]
    result = {
        "settings": asdict(settings),
        "preset": preset if isinstance(preset, str) else "custom",
        "options": {k: v for k, v in overrides.items()},
        "seeds": list(seeds),
        "runs": runs,
        "summary": _summary(runs, modes),
    }
    with atomic_write(out / "ablation.json", "w") as f:
        json.dump(result, f, indent=2)
    curves = {}
    for mode in modes:
        mine = [r["curve"] for r in runs if r["mode"] == mode]
        curves[_NAMES[mode]] = {float(t): sum(c[t] for c in mine) / len(mine) for t in mine[0]}
    save_png(out / "curves.png", plot_curves(
        curves, title=f"attention mIoU (%), mean over seeds {list(seeds)}"))  # fmt: skip
    _write_markdown(out / "ablation.md", result, list(MODES))
    write(f"[ablate done · {time.perf_counter() - start:5.0f} s] -> {out / 'ablation.md'}")
    return result


def merge_options(options: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings (:func:`parse_option`) as keyword arguments of :func:`run_ablation`."""
    out: dict[str, Any] = {}
    for text in options:
        key, value = parse_option(text)
        if key == "attention_options":
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out
