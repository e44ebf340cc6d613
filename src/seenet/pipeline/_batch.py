"""What the batch stages share: one runner over the images of a split, models, weights, summaries.

:func:`run_batch_job` is the loop of every batch stage (attention maps, proxy ground truth,
evaluation, ...): the images are split across processes, loaded by data-loading workers, skipped
when their output is finished, processed one at a time with a progress bar, and the per-image
counts are summed over all processes.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .._classes import VOC_CLASSES, VOC_FOREGROUND
from .._io import atomic_write, bars_off, load_state_dict_file
from ..engine import DistInfo, barrier
from ..models import create_model

__all__ = [
    "run_batch_job",
    "build_model",
    "load_weights",
    "write_json",
    "overlay_ids",
    "class_name",
    "label_name",
    "progress",
]

#: Class names a configuration may use for the generic models, and their registry names.
_CLASS_ALIASES = {
    "SeeNet": "seenet",
    "DeepLabLargeFOV": "deeplab_largefov",
    "SaliencyNet": "saliency",
    "ImageClassifier": "classifier",
}


def progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    """A tqdm progress bar (shown on the main process only)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled or bars_off(),
                dynamic_ncols=True)  # fmt: skip


class _Items(torch.utils.data.Dataset):
    """The images of one process: each loaded (``load``) unless its output is finished."""

    def __init__(
        self,
        ids: Sequence[str],
        load: Callable[[str], Any] | None,
        done: Callable[[str], bool] | None,
    ) -> None:
        self.ids, self.load, self.done = list(ids), load, done

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[str, bool, Any]:
        image_id = self.ids[index]
        if self.done is not None and self.done(image_id):
            return image_id, True, None
        return image_id, False, self.load(image_id) if self.load is not None else image_id


def _identity(x: Any) -> Any:
    return x


def _all_reduce(values: list[float], info: DistInfo) -> list[float]:
    if not info.distributed or not values:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.cpu().tolist()


def run_batch_job(
    items: Sequence[str],
    per_item: Callable[[str, Any], Mapping[str, Any] | None],
    info: DistInfo,
    *,
    desc: str,
    load: Callable[[str], Any] | None = None,
    done: Callable[[str], bool] | None = None,
    num_workers: int = 0,
) -> dict[str, Any]:
    """Run ``per_item`` over ``items`` (all processes together) and sum what it returns.

    Process ``r`` of ``W`` takes ``items[r::W]``. For each item, ``done(item)`` (when given)
    decides whether its output is finished already: it is then skipped. Otherwise ``load(item)``
    runs in one of ``num_workers`` data-loading processes (or in this one), and
    ``per_item(item, loaded)`` in this process; ``per_item`` writes the item's outputs and may
    return counts (numbers or numpy arrays), which are summed over the items and the processes.

    Args:
        items: Image ids (the whole split; every process passes the same list).
        per_item: ``per_item(image_id, loaded) -> counts or None``.
        info: The distributed context (:func:`seenet.engine.init_distributed`).
        desc: Progress-bar label.
        load: ``load(image_id)``, picklable when ``num_workers > 0``; default: the id itself.
        done: ``done(image_id) -> bool``; default: nothing is skipped.
        num_workers: Data-loading processes.

    Returns:
        ``{"total", "written", "skipped", "seconds", **counts}`` over all processes.

    Example:
        >>> from seenet.engine import DistInfo
        >>> run_batch_job(["a", "b", "c"], lambda i, x: {"n": len(i)}, DistInfo(), desc="demo",
        ...               done=lambda i: i == "b")["n"], None
        (2.0, None)
    """
    t0 = time.perf_counter()
    mine = list(items)[info.rank :: info.world_size]
    loader = torch.utils.data.DataLoader(
        _Items(mine, load, done), batch_size=None, num_workers=num_workers,
        collate_fn=_identity,
    )  # fmt: skip
    written = skipped = 0
    sums: dict[str, np.ndarray] = {}
    for image_id, finished, loaded in progress(loader, len(mine), desc, info.is_main):
        if finished:
            skipped += 1
            continue
        counts = per_item(image_id, loaded)
        written += 1
        for key, value in (counts or {}).items():
            array = np.asarray(value, dtype=np.float64)
            sums[key] = sums[key] + array if key in sums else array
    # the same keys, in the same order, on every process (one that wrote nothing has none)
    keys = sorted(sums)
    if info.distributed:
        import torch.distributed as dist

        gathered: list[Any] = [None] * info.world_size
        dist.all_gather_object(gathered, {k: sums[k].shape for k in keys})
        shapes = {k: s for g in gathered for k, s in g.items()}
        keys = sorted(shapes)
        sums = {k: sums.get(k, np.zeros(shapes[k])) for k in keys}
    flat = [float(written), float(skipped)] + [v for k in keys for v in sums[k].ravel().tolist()]
    flat = _all_reduce(flat, info)
    out: dict[str, Any] = {"total": len(items), "written": int(flat[0]), "skipped": int(flat[1])}
    pos = 2
    for key in keys:
        size = sums[key].size
        values = np.asarray(flat[pos : pos + size]).reshape(sums[key].shape)
        out[key] = values if values.ndim else float(values)
        pos += size
    barrier(info)
    out["seconds"] = time.perf_counter() - t0
    return out


def build_model(
    section: Mapping[str, Any], where: str, num_classes: int | None, **override: Any
):
    """Build the model a ``*.model`` configuration section describes, through the registry.

    ``name`` is a registered model (:func:`seenet.list_models`), or ``SeeNet`` /
    ``DeepLabLargeFOV`` for the generic models; the other keys go to its constructor.

    Raises:
        ValueError: For an unknown name or a bad keyword, naming the section.
    """
    spec = dict(section)
    name = spec.pop("name")
    name = _CLASS_ALIASES.get(name, name)
    spec.setdefault("pretrained", False)
    if num_classes is not None:  # class-agnostic models (saliency) take none
        spec.setdefault("num_classes", num_classes)
    spec.update(override)
    try:
        return create_model(name, **spec)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}.model: {e}") from None


def load_weights(model: nn.Module, path: Path, where: str) -> None:
    """Load trained weights into ``model`` strictly; errors name the file and the key.

    Raises:
        FileNotFoundError: If the file is missing.
        FloatingPointError: If it holds NaN or infinity (a broken training run).
        ValueError: If it is not a weights file or does not fit the model.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"{where}: trained weights not found: {path} (train first, or set the weights key)"
        )
    state = load_state_dict_file(path)
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        raise FloatingPointError(
            f"{where}: {path} holds non-finite values ({', '.join(bad[:3])}"
            f"{' ...' if len(bad) > 3 else ''}); retrain the model"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"{where}: {path} does not fit the model described by the configuration: "
            f"{str(e).splitlines()[0]}"
        ) from None


def _finite_or_null(obj: Any, path: str, bad: list[str]) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        bad.append(path or "(value)")
        return None
    if isinstance(obj, np.ndarray):
        return _finite_or_null(obj.tolist(), path, bad)
    if isinstance(obj, np.generic):
        return _finite_or_null(obj.item(), path, bad)
    if isinstance(obj, Mapping):
        return {k: _finite_or_null(v, f"{path}.{k}" if path else str(k), bad)
                for k, v in obj.items()}  # fmt: skip
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v, f"{path}[{i}]", bad) for i, v in enumerate(obj)]
    return obj


def strict_json(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` (strict JSON), warning once naming them."""
    bad: list[str] = []
    out = _finite_or_null(obj, "", bad)
    if bad:
        warnings.warn(
            f"non-finite values written as null: {', '.join(bad[:5])}"
            + (" ..." if len(bad) > 5 else ""),
            RuntimeWarning,
            stacklevel=2,
        )
    return out


def write_json(path: Path, obj: Mapping[str, Any]) -> None:
    """Write strict JSON (non-finite numbers as ``null``), atomically."""
    with atomic_write(path, "w") as f:
        json.dump(strict_json(obj), f, indent=2, default=str, allow_nan=False)
        f.write("\n")


def overlay_ids(section: Any, ids: list[str], where: str) -> list[str]:
    """The images to draw overlays for: ``overlay_ids`` if given, else the first ``overlays``."""
    chosen = [str(i) for i in section.overlay_ids]
    if not chosen:
        return ids[: section.overlays]
    known = set(ids)
    missing = [i for i in chosen if i not in known]
    if missing:
        raise ValueError(
            f"{where}.overlay_ids: {', '.join(missing)} not in the split (in YAML files, quote "
            "image ids such as '2007_000032', which YAML would otherwise read as a number)"
        )
    return chosen


def class_name(index: int, num_classes: int) -> str:
    """The name of foreground class ``index`` (VOC's names for 20 classes, else the number)."""
    return VOC_FOREGROUND[index] if num_classes == len(VOC_FOREGROUND) else str(index)


def label_name(label: int, num_classes: int) -> str:
    """The name of label id ``label`` (0 background, ``c + 1`` class ``c``, 255 ignore)."""
    if label == 255:
        return "ignore"
    if num_classes == len(VOC_FOREGROUND) and label < len(VOC_CLASSES):
        return VOC_CLASSES[label]
    return str(label)
