"""Write class attention maps for every image of a split (.npz per image), skipping finished ones.

The configuration is a YAML recipe plus dotted key=value overrides; the keys this command
reads are listed in seenet.stages.attention_maps. Example:
  seenet attention-maps examples/voc/configs/seenet_vgg16.yaml data.root=data/VOCdevkit/VOC2012
"""

from __future__ import annotations

import argparse

from ._common import add_config_arguments, run_stage

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this command's arguments to ``parser``."""
    add_config_arguments(parser, resume=False, stage="attention_maps")


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    return run_stage("attention_maps", "attention-maps", args)
