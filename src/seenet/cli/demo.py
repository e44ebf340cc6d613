"""Run the whole SeeNet pipeline on built-in synthetic data and write a report.

Generates a synthetic VOC-format data set; trains a saliency network on a separate set of
class-agnostic shapes; trains the attention network in "cam" and "seenet" modes; writes and scores
their attention maps; builds proxy ground truth from each with the trained saliency; trains a
small DeepLab-LargeFOV on each set of labels and evaluates both on the validation images.
Everything runs on the CPU with efficientnet_lite0 ImageNet weights from an installed package;
nothing is downloaded. The output folder receives metrics.json, report.md (tables and figures)
and every stage's outputs. About 9.5 minutes on 2 CPU cores, CAM's and SeeNet's stages side by
side (--quick: under 3, one after the other; --jobs 1 runs the full demo that way too). The
comparison over several seeds is 'seenet ablate'. Example:
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
    parser.add_argument("--seed", type=int, default=0, help="seed of data and training (0)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for PyTorch (default: all cores)"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="run CAM's and SeeNet's stages side by side in "
        "this many processes sharing the threads (default: 2 on 2 or more cores for the full "
        "demo, 1 with --quick, where starting the workers costs more than it saves; 1: one "
        "after the other, with progress bars)"
    )
    parser.add_argument(
        "--no-crf", action="store_true", help="leave out the dense CRF, which refines the "
        "saliency maps and scores the segmentation networks as the paper does (for an install "
        "without the crf extra; lower proxy labels)"
    )
    # a seconds-long smoke run for the test suite; its numbers mean nothing
    parser.add_argument("--preset", choices=("full", "quick", "tiny"), help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ..demo import default_jobs, run_demo

    if args.threads is not None:
        if args.threads < 1:
            print("seenet demo: --threads must be at least 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    if args.jobs is not None and args.jobs < 1:
        print("seenet demo: --jobs must be at least 1", file=sys.stderr)
        return 2
    preset = args.preset or ("quick" if args.quick else "full")
    try:
        jobs = args.jobs if args.jobs is not None else default_jobs() if preset == "full" else 1
        overrides = {"saliency_crf": False, "seg_crf": False} if args.no_crf else {}
        metrics = run_demo(args.out, preset, seed=args.seed, jobs=jobs, **overrides)
    except (ValueError, OSError, ImportError, FloatingPointError) as e:
        if os.environ.get("SEENET_TRACEBACK"):
            raise
        print(f"seenet demo: {e}", file=sys.stderr)
        return 1
    att, proxy, seg = metrics["attention"], metrics["proxy_gt"], metrics["segmentation"]
    rows = [
        ("attention (best threshold)", att["cam"]["miou"], att["seenet"]["miou"]),
        ("proxy ground truth", proxy["cam"]["miou"], proxy["seenet"]["miou"]),
        ("segmentation (val)", seg["cam_miou"], seg["miou"]),
    ]
    if "miou_crf" in seg:
        rows.append(("segmentation (val), DeepLab's CRF", seg["cam_miou_crf"], seg["miou_crf"]))
    print(f"{'mIoU (%)':<34}{'CAM':>8}{'SeeNet':>8}")
    for name, cam, see in rows:
        print(f"{name:<34}{100 * cam:8.1f}{100 * see:8.1f}")
    print(f"{'all-background floor (val)':<34}{100 * seg['floor_miou']:8.1f}")
    sal = metrics["saliency"]
    print(f"saliency max F: trained {sal['trained']['max_f']:.3f}, frequency-tuned "
          f"{sal['frequency_tuned']['max_f']:.3f}")  # fmt: skip
    print(f"report: {os.path.join(args.out, 'report.md')}")
    return 0
