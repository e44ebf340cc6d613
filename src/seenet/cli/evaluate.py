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


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    return run_stage("evaluate", "evaluate", args)
