"""The paper's Table 1 on the built-in synthetic data, over several seeds.

For every seed: a synthetic data set and a saliency network as in the demo, then the attention
network in each erasing mode (cam, acol, zero, seenet) with the demo's settings, on the same
images; its maps and proxy labels are scored. Writes ablation.json, ablation.md (mean +- std over
the seeds, and every seed's row) and curves.png. Two training runs go side by side (--jobs). On
2 CPU cores three modes and three seeds take about 27 minutes (--quick: less). An
interrupted run continues when started again. Example:
  seenet ablate --out ablation --modes cam,acol,seenet --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["add_arguments", "run"]


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 0,1,2, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this command's arguments to ``parser``."""
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--modes", default="cam,acol,seenet",
                        help="erasing modes, comma-separated (cam,acol,seenet; zero also)")
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="seeds (0,1,2)")
    parser.add_argument("--quick", action="store_true",
                        help="the demo's quick preset: fewer images and iterations")
    parser.add_argument(
        "--option", action="append", default=[], metavar="key=value",
        help="change a demo setting (attention_lr=0.02) or pass a SeeNet keyword "
        "(feature_policy=linear); repeatable",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true",
                        help="start again in a folder that holds an ablation with other settings")
    parser.add_argument("--branches", action="store_true",
                        help="also score S_A's and S_B's maps alone (erasing modes); on a "
                        "finished ablation, adds them without training again")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    parser.add_argument("--jobs", type=int, default=None,
                        help="training runs side by side, sharing the threads (default: 2 on "
                        "2 or more cores, which takes about 80 %% of the time of 1)")
    parser.add_argument("--preset", choices=("full", "quick", "tiny"), help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ..ablate import MODES, merge_options, run_ablation
    from ..demo.jobs import default_jobs

    if args.threads is not None:
        if args.threads < 1:
            print("seenet ablate: --threads must be at least 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    if args.jobs is not None and args.jobs < 1:
        print("seenet ablate: --jobs must be at least 1", file=sys.stderr)
        return 2
    preset = args.preset or ("quick" if args.quick else "full")
    try:
        result = run_ablation(
            args.out, [m.strip() for m in args.modes.split(",") if m.strip()], args.seeds,
            preset, overwrite=args.overwrite, branches=args.branches,
            jobs=default_jobs() if args.jobs is None else args.jobs,
            **merge_options(args.option),
        )  # fmt: skip
    except (ValueError, OSError, ImportError, FloatingPointError) as e:
        if os.environ.get("SEENET_TRACEBACK"):
            raise
        print(f"seenet ablate: error: {e}", file=sys.stderr)
        return 1
    print(f"{'mode':<8}{'attention mIoU (%)':>22}{'proxy labels mIoU (%)':>24}")
    for mode in MODES:
        if mode in result["summary"]:
            m = result["summary"][mode]
            print(f"{mode:<8}{100 * m['attention_miou_mean']:>15.1f} ± "
                  f"{100 * m['attention_miou_std']:<4.1f}{100 * m['proxy_gt_miou_mean']:>17.1f} ± "
                  f"{100 * m['proxy_gt_miou_std']:.1f}")  # fmt: skip
    print(f"report: {os.path.join(args.out, 'ablation.md')}")
    return 0
