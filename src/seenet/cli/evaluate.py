"""Evaluate the segmentation network on a split: per-class IoU table and mIoU.

The configuration is a YAML recipe plus dotted key=value overrides; the keys this command
reads are listed in seenet.stages.evaluate. Example:
  seenet evaluate examples/voc/configs/seenet_vgg16.yaml data.root=data/VOCdevkit/VOC2012
"""

from __future__ import annotations

import argparse

from ._common import add_config_arguments, run_stage

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this command's arguments to ``parser``."""
    add_config_arguments(parser, resume=False, stage="evaluate")
    parser.add_argument(
        "--multi-scale",
        action="store_true",
        help="average scales 0.5, 0.75, 1, 1.25, 1.5 (the paper's test; evaluate.scales=...)",
    )
    parser.add_argument("--flip", action="store_true", help="also average the flipped image")
    parser.add_argument(
        "--crf", action="store_true", help="refine with DeepLab's dense CRF (the crf extra)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    switches = []
    if args.multi_scale:
        switches.append("evaluate.scales=[0.5, 0.75, 1.0, 1.25, 1.5]")
    if args.flip:
        switches.append("evaluate.flip=true")
    if args.crf:
        switches.append("evaluate.crf=true")
    args.overrides = [*args.overrides, *switches]
    return run_stage("evaluate", "evaluate", args)
