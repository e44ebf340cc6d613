"""The package's layers hold: building blocks <- algorithms <- pipeline <- command line.

Every import inside ``src/seenet`` (module level or inside a function) is read from the source with
``ast`` and checked against the layer table of ``docs/design_decisions.md``: a module may import
its own layer and the layers below it, never one above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "seenet"

# top-level module or package -> layer (0 lowest)
LAYERS = {
    # building blocks: ops, models, data, engine, metrics, file and argument helpers
    "_io": 0, "_validation": 0, "_classes": 0, "_version": 0, "_schema": 0,
    "functional": 0, "modules": 0, "ops": 0, "models": 0, "data": 0, "engine": 0,
    "metrics": 0, "viz": 0,
    # weakly supervised algorithms on top of them
    "proxy": 1, "saliency": 1, "cam": 1, "crf": 1,
    # the pipeline: configuration, stages, the demo
    "config": 2, "pipeline": 2, "stages": 2, "demo": 2, "ablate": 2, "_templates": 2,
    # the command line
    "cli": 3,
}  # fmt: skip
NAMES = ("building blocks", "algorithms", "pipeline", "command line")
# imports that a layer table cannot express
FORBIDDEN = {
    "engine": {"data"},  # the generic engine knows no data set
}


def _module_name(path: Path, src: Path) -> list[str]:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path, src: Path = SRC) -> list[tuple[int, list[str]]]:
    """(line, absolute dotted name as parts) of every ``seenet`` import in ``path``."""
    here = _module_name(path, src)
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "seenet":
                    found.append((node.lineno, alias.name.split(".")))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "seenet":
                target = node.module.split(".")
            else:
                continue
            folder = src.parent.joinpath(*target)
            for alias in node.names:  # `from x import y` names module x.y when y is a module
                sub = folder / alias.name
                is_module = sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file()
                found.append((node.lineno, target + [alias.name] if is_module else target))
    return found


def _top(parts: list[str]) -> str | None:
    return parts[1] if len(parts) > 1 else None


def _violations(src: Path = SRC) -> list[str]:
    bad = []
    for path in sorted(src.rglob("*.py")):
        top = _top(_module_name(path, src))
        if top is None:  # seenet/__init__.py: the lazy public namespace
            continue
        for line, target in _imports(path, src):
            other = _top(target)
            if other is None or other == top:
                continue
            where = f"{path.relative_to(src.parent)}:{line} imports {'.'.join(target)}"
            if other not in LAYERS:
                bad.append(f"{where}: module {other!r} has no layer in the table")
            elif LAYERS[other] > LAYERS[top]:
                bad.append(
                    f"{where}: {NAMES[LAYERS[top]]} must not import {NAMES[LAYERS[other]]}"
                )
            elif other in FORBIDDEN.get(top, ()):
                bad.append(f"{where}: {top} must not import {other}")
    return bad


def test_every_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert tops - set(LAYERS) == set(), "add the new module to LAYERS (and to the docs)"


def test_no_import_runs_against_the_layers():
    assert _violations() == []


def test_application_code_builds_models_through_the_registry():
    """The pipeline and the command line construct models with ``create_model`` only."""
    bad = []
    for path in [*sorted((SRC / "pipeline").rglob("*.py")), *sorted((SRC / "demo").rglob("*.py")),
                 *sorted((SRC / "cli").rglob("*.py"))]:
        for line, target in _imports(path):
            if target[:2] == ["seenet", "models"] and len(target) > 2:
                bad.append(f"{path.relative_to(SRC.parent)}:{line} imports {'.'.join(target)}")
    assert bad == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ..pipeline import x", "building blocks must not import pipeline"),
        ("from seenet.cli import main", "building blocks must not import command line"),
        ("from ..proxy import proxy_ground_truth", "building blocks must not import algorithms"),
    ],
)
def test_the_check_catches_a_violation(tmp_path, source, expected):
    """The checker itself: a building block that imports upwards is reported."""
    fake = tmp_path / "seenet"
    (fake / "models").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "models" / "__init__.py").write_text("")
    (fake / "models" / "bad.py").write_text(source + "\n")
    found = _violations(fake)
    assert len(found) == 1 and expected in found[0], found
