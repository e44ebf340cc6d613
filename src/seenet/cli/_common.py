"""Shared plumbing of the pipeline commands: config + overrides in, summary out."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_config_arguments", "run_stage"]


def _keys_help(stage: str) -> str:
    """The configuration keys a stage reads, from its docstring (without Args/Returns)."""
    import inspect

    from .. import stages

    doc = inspect.getdoc(getattr(stages, stage)) or ""
    kept = []
    for block in doc.split("\n\n"):
        if block.startswith(("Args:", "Returns:", "Raises:")):
            continue
        kept.append(block.replace("``", "").replace(":func:", "").replace(":class:", "")
                    .replace(":meth:", "").replace(":data:", ""))
    return "\n\n".join(kept)


def add_config_arguments(
    parser: argparse.ArgumentParser, resume: bool = False, stage: str | None = None
) -> None:
    """Add ``CONFIG``, ``key=value`` overrides and the common flags to ``parser``.

    With ``stage``, the help ends with the configuration keys that stage reads.
    """
    if stage is not None:
        parser.epilog = (parser.epilog or "") + "\n\n" + _keys_help(stage)
    parser.add_argument(
        "config",
        nargs="?",
        help="YAML recipe (for example examples/voc/configs/seenet_vgg16.yaml); "
        "omit it to start from the paper defaults",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides applied after the file, values read as YAML "
        "(data.root=/data/VOC2012 attention.train.iterations=100 maps.save_png=true)",
    )
    if resume:
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue from the last checkpoint in the output folder (model, optimiser, "
            "schedule, iteration and random states)",
        )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved configuration and exit"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _split_config(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).is_file():
        overrides.insert(0, config)
        config = None
    return config, overrides


def _print_summary(name: str, summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    table = summary.get("table")
    if table:
        print(table)
    for key, value in summary.items():
        if key in ("table", "iou"):
            continue
        if isinstance(value, float):
            value = f"{value:.4g}"
        print(f"{key}: {value}")


def run_stage(name: str, command: str, args: argparse.Namespace) -> int:
    """Load the configuration, call ``seenet.stages.<name>`` and print its summary.

    Errors a user can fix (a missing file, a bad value) are printed as one line naming the
    problem, with exit status 1; set ``SEENET_TRACEBACK=1`` to see the traceback instead.
    """
    from .. import stages
    from ..config import load_config

    config, overrides = _split_config(args)
    try:
        if getattr(args, "resume", False):
            key = "attention" if name == "train_attention" else "segmentation"
            overrides.append(f"{key}.train.resume=true")
        cfg = load_config(config, overrides)
        if args.print_config:
            import yaml

            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return 0
        summary = getattr(stages, name)(cfg)
    except (FileNotFoundError, ValueError, ImportError, FloatingPointError) as e:
        if os.environ.get("SEENET_TRACEBACK"):
            raise
        print(f"seenet {command}: error: {_message(e)}", file=sys.stderr)
        return 1
    finally:
        from ..engine import cleanup

        cleanup()
    if summary.get("rank", 0) == 0:
        _print_summary(command, summary, args.json)
    return 0


def _message(error: BaseException) -> str:
    """The user-facing line of an error, also when a data-loading worker raised it."""
    text = str(error).strip()
    if "Original Traceback" in text:  # re-raised by a DataLoader worker: keep the last line
        last = text.splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text
