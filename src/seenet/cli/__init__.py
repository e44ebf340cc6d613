"""The ``seenet`` command line: a thin table over the pipeline.

``seenet <command> [CONFIG] [key=value ...]``. The pipeline commands read one YAML recipe (see
``examples/voc/configs/``) plus dotted ``key=value`` overrides and call one function of
:mod:`seenet.pipeline`; their ``--help`` lists every configuration key they read, with its meaning
and default, straight from the schema (:mod:`seenet.config`). ``make-synthetic`` writes a
synthetic VOC-format data set and ``demo`` runs the whole pipeline on it; they have modules of their
own (``add_arguments(parser)`` and ``run(args) -> int``).

Targets are imported only when their command runs, so ``seenet --help`` stays fast and one
missing command never breaks the others.

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
from dataclasses import dataclass

from .._version import __version__

__all__ = ["main", "COMMANDS", "Command"]


@dataclass(frozen=True)
class Command:
    """One row of the command table.

    Attributes:
        target: ``"module:function"`` of a pipeline stage (configuration in, summary out), or a
            module with ``add_arguments`` and ``run`` (no colon).
        help: One line for ``seenet --help``.
        sections: For a stage, the configuration sections its ``--help`` lists.
        resume: For a training stage, the key that ``--resume`` sets to true.
        switches: Flags that stand for overrides: ``(flag, help, overrides)``.
    """

    target: str
    help: str
    sections: tuple[str, ...] = ()
    resume: str | None = None
    switches: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


_COMMON = ("work_dir", "seed", "device", "data")

#: command -> :class:`Command`, in pipeline order.
COMMANDS: dict[str, Command] = {
    "train-attention": Command(
        "seenet.pipeline.train:train_attention",
        "train the self-erasing attention network on image-level labels",
        (*_COMMON, "attention"), resume="attention.train.resume",
    ),
    "attention-maps": Command(
        "seenet.pipeline.maps:attention_maps",
        "write class attention maps (.npz per image) for a split",
        (*_COMMON, "attention.model", "maps"),
    ),
    "proxy-gt": Command(
        "seenet.pipeline.proxy:proxy_gt",
        "build proxy ground-truth labels from attention maps and saliency",
        (*_COMMON, "proxy"),
    ),
    "train-seg": Command(
        "seenet.pipeline.train:train_seg", "train DeepLab-LargeFOV on the proxy labels",
        (*_COMMON, "segmentation"), resume="segmentation.train.resume",
    ),
    "evaluate": Command(
        "seenet.pipeline.evaluate:evaluate",
        "per-class IoU and mIoU of the segmentation network",
        (*_COMMON, "segmentation.model", "segmentation.transforms.ignore_index", "evaluate"),
        switches=(
            ("--multi-scale", "average scales 0.5, 0.75, 1, 1.25, 1.5 (the paper's test)",
             ("evaluate.scales=[0.5, 0.75, 1.0, 1.25, 1.5]",)),
            ("--flip", "also average the flipped image", ("evaluate.flip=true",)),
            ("--crf", "refine with DeepLab's dense CRF (the crf extra)", ("evaluate.crf=true",)),
        ),
    ),
    "evaluate-maps": Command(
        "seenet.pipeline.evaluate:evaluate_maps",
        "score stored attention maps along a threshold sweep (papers' attention mIoU)",
        (*_COMMON, "evaluate_maps"),
    ),
    "evaluate-labels": Command(
        "seenet.pipeline.evaluate:evaluate_labels",
        "score proxy or pseudo labels against the ground truth",
        (*_COMMON, "evaluate_labels"),
    ),
    "cam-maps": Command(
        "seenet.pipeline.maps:cam_maps",
        "write stored maps from any classifier (CAM, Grad-CAM, torchcam, grad-cam)",
        (*_COMMON, "cam"),
    ),
    "train-saliency": Command(
        "seenet.pipeline.saliency:train_saliency",
        "train a class-agnostic saliency network on a salient-object data set",
        ("work_dir", "seed", "device", "data.num_workers", "saliency"),
        resume="saliency.train.resume",
    ),
    "saliency-maps": Command(
        "seenet.pipeline.saliency:saliency_maps",
        "write the saliency network's maps (8-bit PNGs) into data.saliency_dir",
        (*_COMMON, "saliency.model", "saliency_maps"),
    ),
    "evaluate-saliency": Command(
        "seenet.pipeline.saliency:evaluate_saliency",
        "MAE, maximum F-measure and S-measure of saliency maps",
        (*_COMMON, "evaluate_saliency"),
    ),
    "make-synthetic": Command(
        "seenet.cli.make_synthetic", "write a synthetic data set in the VOC layout"
    ),
    "demo": Command("seenet.cli.demo", "run the whole pipeline on built-in synthetic data"),
    "ablate": Command(
        "seenet.cli.ablate", "the paper's Table 1 on built-in synthetic data, over seeds"
    ),
}  # fmt: skip

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
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
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
    command = COMMANDS[name]
    if ":" in command.target:
        from ._common import stage_parser

        sub = stage_parser(name, command)
        run = None
    else:
        try:
            module = importlib.import_module(command.target)
        except ModuleNotFoundError as e:
            if e.name != command.target:
                raise
            print(f"seenet {name}: this command is not available in this installation",
                  file=sys.stderr)  # fmt: skip
            return 1
        doc = (module.__doc__ or command.help).strip()
        sub = argparse.ArgumentParser(
            prog=f"seenet {name}",
            description=doc.split("\n\n")[0],
            epilog="\n\n".join(doc.split("\n\n")[1:]) or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        run = module.run
    try:
        namespace = sub.parse_intermixed_args(args[1:])
    except SystemExit as e:
        return int(e.code or 0)
    if run is None:
        from ._common import run_stage

        return run_stage(name, command, namespace)
    return int(run(namespace) or 0)
