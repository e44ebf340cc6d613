"""Provenance of a stage's outputs: ``run.json``, so that nothing stale is reused or overwritten.

Every stage writes ``run.json`` into its output folder before its first output: the seenet
version, the stage, the configuration that decides the outputs, digests of its inputs (a weights
file, or the ``run.json`` of the stage it reads), and the time. A stage that finds outputs in its
folder continues only when the stored manifest matches the current one (same configuration, same
inputs); otherwise it stops with an error naming what changed, or, with ``overwrite``, removes its
old outputs and starts again. Downstream stages record the digest of their input's manifest, so a
change anywhere up the chain is noticed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._io import atomic_write
from .._version import __version__

__all__ = [
    "MANIFEST",
    "claim_output",
    "TRAINING_OUTPUTS",
    "prepare_training",
    "file_digest",
    "manifest_digest",
    "make_manifest",
    "prepare_output",
    "remove_orphans",
    "differences",
]

#: The manifest's file name in every output folder.
MANIFEST = "run.json"

_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")  # the temporary files of seenet._io.atomic_write


def file_digest(path: str | os.PathLike) -> str:
    """``"sha256:<hex>"`` of a file's bytes (read in 1 MiB blocks).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "w"
        >>> _ = p.write_bytes(b"")
        >>> file_digest(p)[:15]
        'sha256:e3b0c442'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def manifest_digest(folder: str | os.PathLike) -> str | None:
    """Digest of the ``run.json`` of ``folder`` without its time (``None`` when it has none)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    data.pop("time", None)
    text = json.dumps(data, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def make_manifest(stage: str, config: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict:
    """The manifest of a stage's outputs (see the module docstring)."""
    return {
        "seenet_version": __version__,
        "stage": stage,
        "config": json.loads(json.dumps(config, default=str)),
        "inputs": dict(inputs),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings, as ``key: old -> new``.

    Example:
        >>> differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}})
        ['a.c: 2 -> 3']
    """
    out = []
    for key in sorted(set(old) | set(new)):
        dotted = f"{prefix}.{key}" if prefix else str(key)
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, dotted)
        elif a != b:
            out.append(f"{dotted}: {a} -> {b}")
    return out


def remove_orphans(folder: Path) -> int:
    """Remove temporary files that an interrupted atomic write left in ``folder`` (recursively)."""
    removed = 0
    if folder.is_dir():
        for path in folder.rglob(".*.tmp"):
            if _TMP.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def prepare_output(
    out_dir: Path,
    manifest: Mapping[str, Any],
    outputs: Iterable[str],
    *,
    overwrite: bool,
    where: str,
    write: bool = True,
) -> None:
    """Make ``out_dir`` ready for a stage whose current manifest is ``manifest``.

    Orphan temporary files are removed. When the folder holds outputs (files matching the
    ``outputs`` patterns) from a run whose stored manifest differs in configuration or inputs, the
    call raises ``ValueError`` naming the differences, unless ``overwrite`` is set: then those
    outputs are removed. Finally the manifest is written (keeping the stored one when it matches).

    Args:
        out_dir: The stage's output folder.
        manifest: :func:`make_manifest`'s result.
        outputs: Glob patterns (relative to ``out_dir``) of the stage's outputs.
        overwrite: Remove outdated outputs instead of refusing.
        where: The stage's name for messages.
        write: Remove files and write the manifest (the main process); other processes only
            check.

    Raises:
        ValueError: If outdated outputs are present and ``overwrite`` is not set.
    """
    if write:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_orphans(out_dir)
    found = sorted({p for pattern in outputs for p in out_dir.glob(pattern)})
    path = out_dir / MANIFEST
    stored = json.loads(path.read_text()) if path.is_file() else None
    if found:
        if stored is None:
            changed = ["no run.json: the outputs were written by another program or version"]
        else:
            changed = differences(
                {"config": stored.get("config", {}), "inputs": stored.get("inputs", {})},
                {"config": manifest["config"], "inputs": manifest["inputs"]},
            )
        if changed and not overwrite:
            shown = "; ".join(changed[:6]) + (" ..." if len(changed) > 6 else "")
            raise ValueError(
                f"{where}: {out_dir} holds {len(found)} outputs of another run ({shown}); "
                "pass --overwrite (overwrite=True) to recompute them, or choose another "
                "output folder"
            )
        if not write:
            return
        if changed:
            for p in found:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            stored = None
    if not write:
        return
    if stored is None or differences(stored.get("config", {}), manifest["config"]) or differences(
        stored.get("inputs", {}), manifest["inputs"]
    ):
        with atomic_write(path, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")


#: What a training stage writes into its folder.
TRAINING_OUTPUTS = (
    "checkpoint.pt", "model.safetensors", "metrics.jsonl", "summary.json", "config.yaml", MANIFEST,
)
# keys that may change when a run is resumed: they do not change what was trained so far
_RESUMABLE = {"iterations", "resume", "checkpoint_every", "log_every", "num_workers", "out_dir"}


def _strip(config: Any) -> Any:
    if isinstance(config, Mapping):
        return {k: _strip(v) for k, v in config.items() if k not in _RESUMABLE}
    return config


def prepare_training(
    out_dir: Path,
    config: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    resume: bool,
    overwrite: bool,
    where: str,
    write: bool = True,
) -> None:
    """Make ``out_dir`` ready for a training stage, before anything is written.

    A folder that holds a checkpoint or trained weights is never overwritten silently:

    - with ``resume``, the stored configuration (``run.json``) is compared with ``config`` first;
      keys other than ``iterations``, ``checkpoint_every``, ``log_every``, ``num_workers`` and
      ``out_dir`` must not differ (the error lists those that do), and the inputs must match;
    - with ``overwrite``, the old run's files are removed;
    - with neither, the call raises ``ValueError`` saying both options.

    The manifest of the new (or continued) run is then written.

    Raises:
        ValueError: As above.
    """
    path = out_dir / MANIFEST
    trained = (out_dir / "checkpoint.pt").is_file() or (out_dir / "model.safetensors").is_file()
    if trained and not overwrite:
        if not resume:
            raise ValueError(
                f"{where}: {out_dir} already holds a trained run; pass --resume to continue it "
                "(or to finish a completed one without training), --overwrite to train again "
                "from scratch, or choose another output folder"
            )
        if path.is_file():
            stored = json.loads(path.read_text())
            changed = differences(_strip(stored.get("config", {})), _strip(config))
            changed += differences(stored.get("inputs", {}), dict(inputs), "inputs")
            if changed:
                raise ValueError(
                    f"{where}: cannot resume {out_dir}: the configuration differs from the stored "
                    f"run's in {'; '.join(changed)} (only iterations, checkpoint_every, "
                    "log_every and num_workers may change); pass --overwrite to train again"
                )
    if not write:
        return
    if trained and overwrite:
        for name in TRAINING_OUTPUTS:
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_orphans(out_dir)
    with atomic_write(path, "w") as f:
        json.dump(make_manifest(where, config, inputs), f, indent=2)
        f.write("\n")


def claim_output(
    out_dir: Path,
    stage: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, Any],
    outputs: Iterable[str],
    info: Any,
    overwrite: bool,
) -> None:
    """:func:`prepare_output` on every process (the main one writes), then wait for all."""
    from ..engine import barrier

    manifest = make_manifest(stage, config, inputs)
    prepare_output(out_dir, manifest, outputs, overwrite=overwrite, where=stage,
                   write=info.is_main)  # fmt: skip
    barrier(info)
