"""Write a synthetic data set in the PASCAL VOC 2012 + SBD layout.

Images of aeroplanes, boats, cars and trains: large objects whose body looks the same in every
class with a small class-specific part, each class usually on its own background (sky, water,
road, rails). The tree (JPEGImages, SegmentationClass, SegmentationClassAug,
ImageSets/Segmentation/{train,train_aug,val,trainval}.txt) is what the VOC recipes read
(data.root=DIR). The same arguments always give the same files. Example:
  seenet make-synthetic --out data/synthetic --num-train 500 --num-val 100
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this command's arguments to ``parser``."""
    parser.add_argument("--out", required=True, help="output folder (the VOC2012-like root)")
    parser.add_argument("--num-train", type=int, default=600, help="training images (600)")
    parser.add_argument("--num-val", type=int, default=150, help="validation images (150)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--max-objects", type=int, default=3, help="up to this many objects per image (3)"
    )
    parser.add_argument(
        "--context-prob",
        type=float,
        default=0.8,
        help="probability that the background is the first object's own context (0.8); "
        "otherwise it is drawn uniformly from all contexts",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    from ..data.synthetic import make_synthetic_voc

    try:
        info = make_synthetic_voc(
            args.out,
            num_train=args.num_train,
            num_val=args.num_val,
            size=args.size,
            seed=args.seed,
            max_objects=args.max_objects,
            context_prob=args.context_prob,
            progress=not args.quiet,
        )
    except (ValueError, OSError) as e:
        print(f"seenet make-synthetic: {e}", file=sys.stderr)
        return 1
    print(
        f"wrote {info['num_train']} training and {info['num_val']} validation images "
        f"({info['size']} px, classes {', '.join(info['classes'])}) to {args.out}"
    )
    return 0
