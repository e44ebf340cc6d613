"""The pipeline commands' plumbing: arguments, configuration and overrides in, summary out."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["stage_parser", "run_stage", "keys_help"]


def keys_help(sections: tuple[str, ...]) -> str:
    """Every configuration key under ``sections``: its dotted name, default and meaning.

    Example:
        >>> print(keys_help(("seed",)))  # doctest: +NORMALIZE_WHITESPACE
        configuration keys (key=value overrides; defaults are the paper's):
          seed = 0
              seed of new layers' weights, data order and augmentation
    """
    import yaml

    from ..config import Config

    lines = ["configuration keys (key=value overrides; defaults are the paper's):"]
    for key, text, value in Config().describe():
        if not any(key == s or key.startswith(s + ".") for s in sections):
            continue
        shown = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
        shown = shown.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"  {key} = {shown}")
        lines += textwrap.wrap(text, 88, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def _target(spec: str) -> Any:
    module, function = spec.split(":")
    return getattr(importlib.import_module(module), function)


def stage_parser(name: str, command: Any) -> argparse.ArgumentParser:
    """The argument parser of a pipeline command (``command`` is a :class:`seenet.cli.Command`)."""
    doc = inspect.getdoc(_target(command.target)) or command.help
    parser = argparse.ArgumentParser(
        prog=f"seenet {name}",
        description=doc.split("\n\n")[0],
        epilog=keys_help(command.sections),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    if command.resume:
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue from the last checkpoint in the output folder (model, optimiser, "
            "schedule, iteration and random states)",
        )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the outputs of another run (other weights, data or settings) in the output "
        "folder instead of stopping",
    )
    for flag, text, _ in command.switches:
        parser.add_argument(flag, action="store_true", help=f"{text} (an override)")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved configuration and exit"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _split_config(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).is_file():
        overrides.insert(0, config)
        config = None
    return config, overrides


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        from ..pipeline._batch import strict_json

        print(json.dumps(strict_json(summary), indent=2, default=str, allow_nan=False))
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


def run_stage(name: str, command: Any, args: argparse.Namespace) -> int:
    """Load the configuration, call the command's stage function and print its summary.

    Errors a user can fix (a missing file, a bad value) are printed as one line naming the
    problem, with exit status 1; set ``SEENET_TRACEBACK=1`` to see the traceback instead.
    """
    from ..config import load_config

    config, overrides = _split_config(args)
    try:
        if getattr(args, "resume", False):
            overrides.append(f"{command.resume}=true")
        for flag, _, switched in command.switches:
            if getattr(args, flag.lstrip("-").replace("-", "_")):
                overrides += switched
        cfg = load_config(config, overrides)
        if args.print_config:
            import yaml

            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return 0
        summary = _target(command.target)(cfg, overwrite=args.overwrite)
    except (OSError, ValueError, ImportError, FloatingPointError) as e:
        if os.environ.get("SEENET_TRACEBACK"):
            raise
        print(f"seenet {name}: error: {_message(e)}", file=sys.stderr)
        return 1
    finally:
        from ..engine import cleanup

        cleanup()
    if summary.get("rank", 0) == 0:
        _print_summary(summary, args.json)
    return 0


def _message(error: BaseException) -> str:
    """The user-facing line of an error, also when a data-loading worker raised it."""
    text = str(error).strip()
    if "Original Traceback" in text:  # re-raised by a DataLoader worker: keep the last line
        last = text.splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text
