"""The ``seenet`` command line.

``seenet <command> [CONFIG] [key=value ...]``. The pipeline commands (``train-attention``,
``attention-maps``, ``proxy-gt``, ``train-seg``, ``evaluate``) read one YAML recipe (see
``examples/voc/configs/``) plus dotted ``key=value`` overrides and call the functions of
:mod:`seenet.stages`. ``make-synthetic`` writes a synthetic VOC-format data set and ``demo``
runs the whole pipeline on it.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their command runs, so one missing command never breaks the others.

Example:
    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: seenet ...
    0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .._version import __version__

__all__ = ["main", "COMMANDS"]

#: command -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "train-attention": (
        "seenet.cli.train_attention",
        "train the self-erasing attention network on image-level labels",
    ),
    "attention-maps": (
        "seenet.cli.attention_maps",
        "write class attention maps (.npz per image) for a split",
    ),
    "proxy-gt": (
        "seenet.cli.proxy_gt",
        "build proxy ground-truth labels from attention maps and saliency",
    ),
    "train-seg": ("seenet.cli.train_seg", "train DeepLab-LargeFOV on the proxy labels"),
    "evaluate": ("seenet.cli.evaluate", "per-class IoU and mIoU of the segmentation network"),
    "make-synthetic": (
        "seenet.cli.make_synthetic",
        "write a synthetic data set in the VOC layout",
    ),
    "demo": ("seenet.cli.demo", "run the whole pipeline on built-in synthetic data"),
}

_EPILOG = """\
The pipeline, in order (one recipe file for every step):
  seenet train-attention examples/voc/configs/seenet_vgg16.yaml data.root=VOC2012
  seenet attention-maps  examples/voc/configs/seenet_vgg16.yaml data.root=VOC2012
  seenet proxy-gt        examples/voc/configs/seenet_vgg16.yaml data.root=VOC2012
  seenet train-seg       examples/voc/configs/seenet_vgg16.yaml data.root=VOC2012
  seenet evaluate        examples/voc/configs/seenet_vgg16.yaml data.root=VOC2012
Several GPUs: torchrun --nproc_per_node 8 -m seenet.cli train-attention ...
Run 'seenet <command> --help' for the options of a command."""


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seenet",
        description="Self-Erasing Network (SeeNet): attention, proxy labels and segmentation.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"seenet {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="<command>")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``seenet`` command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 when a command fails, 2 for a usage error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _top_parser()
    if not args or args[0] not in COMMANDS:
        if not args:
            parser.print_help()
            return 2
        try:
            parser.parse_args(args)
        except SystemExit as e:
            return int(e.code or 0)
        return 2
    name = args[0]
    module_name, text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        print(f"seenet {name}: this command is not available in this installation", file=sys.stderr)
        return 1
    sub = argparse.ArgumentParser(
        prog=f"seenet {name}",
        description=(module.__doc__ or text).strip().split("\n\n")[0],
        epilog="\n\n".join((module.__doc__ or "").strip().split("\n\n")[1:]) or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(sub)
    try:
        namespace = sub.parse_intermixed_args(args[1:])
    except SystemExit as e:
        return int(e.code or 0)
    return int(module.run(namespace) or 0)
