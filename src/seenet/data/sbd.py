"""Convert the SBD augmentation (Hariharan et al. 2011) to ``SegmentationClassAug`` PNGs.

SBD ships its class masks as MATLAB files (``dataset/cls/{id}.mat``, struct ``GTcls`` with field
``Segmentation``). The standard VOC "aug" set merges them with VOC 2012's own masks: VOC's masks
win where both exist (they carry the 255 boundary band), and ``train_aug`` is SBD train + SBD val +
VOC train, minus VOC val: 10,582 images.

Reading ``.mat`` files needs SciPy (``pip install 'seenet[voc]'``). Command line::

    python -m seenet.data.sbd SBD/benchmark_RELEASE VOCdevkit/VOC2012
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write, bars_off
from .voc import load_label, read_split, save_label

__all__ = ["read_sbd_mat", "convert_sbd", "main"]


def _scipy_io() -> Any:
    try:
        import scipy.io
    except ImportError as e:
        raise ImportError(
            "reading SBD .mat files needs SciPy: pip install 'seenet[voc]' (or pip install scipy)"
        ) from e
    return scipy.io


def read_sbd_mat(path: str | os.PathLike) -> np.ndarray:
    """Read the class mask of one SBD ``cls/*.mat`` file as uint8 (H, W) label ids.

    Raises:
        ImportError: If SciPy is missing (names the ``voc`` extra).
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not an SBD class file, naming it.
    """
    sio = _scipy_io()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SBD file not found: {path}")
    try:
        mat = sio.loadmat(str(path), squeeze_me=True, struct_as_record=False)
        seg = np.asarray(mat["GTcls"].Segmentation)
    except Exception as e:  # scipy raises many types for bad files
        raise ValueError(f"cannot read SBD class file {path}: {type(e).__name__}: {e}") from None
    if seg.ndim != 2 or seg.size == 0 or seg.min() < 0 or seg.max() > 255:
        raise ValueError(f"{path}: GTcls.Segmentation must be a (H, W) map of ids in [0, 255]")
    return seg.astype(np.uint8)


def convert_sbd(
    sbd_root: str | os.PathLike,
    voc_root: str | os.PathLike,
    out_dir: str = "SegmentationClassAug",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Write ``SegmentationClassAug`` and ``train_aug.txt`` from SBD and VOC 2012.

    Args:
        sbd_root: SBD's ``benchmark_RELEASE`` folder (holding ``dataset/cls`` and
            ``dataset/train.txt``, ``dataset/val.txt``), or its ``dataset`` folder.
        voc_root: The ``VOC2012`` folder.
        out_dir: Output folder, relative to ``voc_root`` unless absolute.
        overwrite: Rewrite existing PNGs (otherwise finished files are skipped).
        progress: Show a progress bar.

    Returns:
        Counts: ``sbd`` (PNGs converted from SBD), ``voc`` (copied from VOC), ``skipped``,
        ``train_aug`` (ids in the written list).
    """
    sbd = Path(sbd_root)
    if (sbd / "dataset").is_dir():
        sbd = sbd / "dataset"
    cls_dir = sbd / "cls"
    if not cls_dir.is_dir():
        raise FileNotFoundError(f"SBD class folder not found: {cls_dir}")
    voc = Path(voc_root)
    out = Path(out_dir) if Path(out_dir).is_absolute() else voc / out_dir
    voc_masks = voc / "SegmentationClass"
    voc_train = read_split(voc, "train")
    voc_val = read_split(voc, "val")
    sbd_ids: list[str] = []
    for name in ("train", "val"):
        list_file = sbd / f"{name}.txt"
        if list_file.is_file():
            sbd_ids += read_split(None, list_file)
    if not sbd_ids:
        sbd_ids = sorted(p.stem for p in cls_dir.glob("*.mat"))
    counts = {"sbd": 0, "voc": 0, "skipped": 0, "train_aug": 0}
    voc_ids = set(p.stem for p in voc_masks.glob("*.png")) if voc_masks.is_dir() else set()
    todo = sorted(set(sbd_ids) | voc_ids)
    from tqdm.auto import tqdm

    for image_id in tqdm(todo, desc="SBD -> PNG", disable=not progress or bars_off()):
        target = out / f"{image_id}.png"
        if target.exists() and not overwrite:
            counts["skipped"] += 1
            continue
        if image_id in voc_ids:
            source = voc_masks / f"{image_id}.png"
            load_label(source)  # check it reads
            with atomic_write(target, "wb") as f, open(source, "rb") as src:
                shutil.copyfileobj(src, f)
            counts["voc"] += 1
        else:
            save_label(target, read_sbd_mat(cls_dir / f"{image_id}.mat"))
            counts["sbd"] += 1
    val = set(voc_val)
    train_aug: list[str] = []
    seen: set[str] = set()
    for image_id in sorted(set(sbd_ids) | set(voc_train)):
        if image_id not in val and image_id not in seen:
            seen.add(image_id)
            train_aug.append(image_id)
    with atomic_write(voc / "ImageSets" / "Segmentation" / "train_aug.txt", "w") as f:
        f.write("\n".join(train_aug) + "\n")
    counts["train_aug"] = len(train_aug)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m seenet.data.sbd SBD_ROOT VOC_ROOT``."""
    parser = argparse.ArgumentParser(
        prog="python -m seenet.data.sbd",
        description="Convert SBD .mat masks to VOC2012/SegmentationClassAug PNGs and write "
        "ImageSets/Segmentation/train_aug.txt (10,582 ids for the full data).",
    )
    parser.add_argument("sbd_root", help="SBD benchmark_RELEASE folder")
    parser.add_argument("voc_root", help="VOCdevkit/VOC2012 folder")
    parser.add_argument("--out-dir", default="SegmentationClassAug")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        counts = convert_sbd(args.sbd_root, args.voc_root, args.out_dir, args.overwrite)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
