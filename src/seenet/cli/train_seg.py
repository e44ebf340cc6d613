"""Train DeepLab-LargeFOV on the proxy labels (poly schedule, DeepLab defaults).

The configuration is a YAML recipe plus dotted key=value overrides; the keys this command
reads are listed in seenet.stages.train_seg. Example:
  seenet train-seg examples/voc/configs/seenet_vgg16.yaml data.root=data/VOCdevkit/VOC2012
"""

from __future__ import annotations

import argparse

from ._common import add_config_arguments, run_stage

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this command's arguments to ``parser``."""
    add_config_arguments(parser, resume=True, stage="train_seg")


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    return run_stage("train_seg", "train-seg", args)
