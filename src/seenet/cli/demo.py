"""Run the whole SeeNet pipeline on built-in synthetic data and write a report.

Generates a synthetic VOC-format data set, trains the attention network in "cam" and "seenet"
modes, writes attention maps, builds proxy ground truth with the built-in saliency, trains a small
DeepLab-LargeFOV on the SeeNet proxy labels and evaluates it; then repeats the attention
comparison on the same images without class context (backgrounds drawn regardless of the
classes; --no-context-ablation skips it). Everything runs on the CPU with
efficientnet_lite0 ImageNet weights from an installed package; nothing is downloaded. The output
folder receives metrics.json, report.md (mIoU table and figures) and every stage's outputs.
About 7 minutes on 2 CPU cores (--quick: under 3). Example:
  seenet demo --out demo-output
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this command's arguments to ``parser``."""
    parser.add_argument(
        "--out", default="demo-output", help="output folder (demo-output); a folder of an "
        "earlier demo run is reused, any other non-empty folder is refused"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer images and iterations (under 3 minutes)"
    )
    parser.add_argument(
        "--warm-start",
        action="store_true",
        help="start SeeNet from the trained CAM network's backbone instead of from ImageNet "
        "weights alone (not the paper's recipe)",
    )
    parser.add_argument(
        "--no-context-ablation",
        action="store_true",
        help="skip the attention comparison on the same images without class context",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data and training (0)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for PyTorch (default: all cores)"
    )
    # a seconds-long smoke run for the test suite; its numbers mean nothing
    parser.add_argument("--preset", choices=("full", "quick", "tiny"), help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ..demo import run_demo

    if args.threads is not None:
        if args.threads < 1:
            print("seenet demo: --threads must be at least 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    preset = args.preset or ("quick" if args.quick else "full")
    try:
        extra = {"warm_start": True} if args.warm_start else {}
        if args.no_context_ablation:
            extra["context_ablation"] = False
        metrics = run_demo(args.out, preset, seed=args.seed, **extra)
    except (ValueError, FileNotFoundError, ImportError) as e:
        if os.environ.get("SEENET_TRACEBACK"):
            raise
        print(f"seenet demo: {e}", file=sys.stderr)
        return 1
    att, proxy = metrics["attention"], metrics["proxy_gt"]
    print(f"{'mIoU (%)':<34}{'CAM':>8}{'SeeNet':>8}")
    print(
        f"{'attention (best threshold)':<34}{100 * att['cam']['miou']:8.1f}"
        f"{100 * att['seenet']['miou']:8.1f}"
    )
    print(
        f"{'proxy ground truth':<34}{100 * proxy['cam']['miou']:8.1f}"
        f"{100 * proxy['seenet']['miou']:8.1f}"
    )
    print(f"{'segmentation (val, SeeNet labels)':<34}{'':>8}"
          f"{100 * metrics['segmentation']['miou']:8.1f}")  # fmt: skip
    if "no_context" in metrics:
        ablation = metrics["no_context"]["attention"]
        print(
            f"{'attention, no class context':<34}{100 * ablation['cam']['miou']:8.1f}"
            f"{100 * ablation['seenet']['miou']:8.1f}"
        )
    print(f"report: {os.path.join(args.out, 'report.md')}")
    return 0
