"""A tiny PASCAL-VOC-format tree for the data, engine, stage and command-line tests.

Images of a few dozen pixels with one or two coloured rectangles; masks, XML annotations, split
lists and saliency maps written in the standard layout. Loaded by the tests with
``importlib`` (the test tree is not a package).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from seenet._classes import VOC_FOREGROUND, voc_palette

# class index -> colour of its rectangle
_COLOURS = {0: (220, 40, 40), 1: (40, 200, 60), 2: (50, 60, 230)}


def _xml(name: str, classes: list[int], size: tuple[int, int]) -> str:
    objects = "".join(
        f"<object><name>{VOC_FOREGROUND[c]}</name><difficult>0</difficult></object>"
        for c in classes
    )
    return (
        f"<annotation><filename>{name}.jpg</filename><size><width>{size[1]}</width>"
        f"<height>{size[0]}</height><depth>3</depth></size>{objects}</annotation>"
    )


def make_tiny_voc(
    root: Path, n_train: int = 6, n_val: int = 3, size: tuple[int, int] = (40, 48), seed: int = 0
) -> Path:
    """Write the tree under ``root/VOC2012`` and return that folder."""
    rng = np.random.default_rng(seed)
    voc = Path(root) / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "Annotations",
                "ImageSets/Segmentation", "Saliency"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    palette = voc_palette().reshape(-1).tolist()
    ids = [f"2007_{i:06d}" for i in range(n_train + n_val)]
    h, w = size
    for i, name in enumerate(ids):
        image = rng.integers(90, 140, size=(h, w, 3)).astype(np.uint8)
        mask = np.zeros((h, w), np.uint8)
        classes = [i % 3] if i % 2 == 0 else [i % 3, (i + 1) % 3]
        for k, c in enumerate(classes):
            top, left = 4 + 14 * k, 4 + 18 * k
            bh, bw = h // 2, w // 3
            image[top : top + bh, left : left + bw] = _COLOURS[c]
            mask[top : top + bh, left : left + bw] = c + 1
        edge = (mask > 0) & (np.roll(mask, 1, axis=0) == 0)
        gt = mask.copy()
        gt[edge] = 255
        Image.fromarray(image).save(voc / "JPEGImages" / f"{name}.jpg", quality=95)
        for folder, m in (("SegmentationClass", gt), ("SegmentationClassAug", gt)):
            png = Image.fromarray(m, mode="P")
            png.putpalette(palette)
            png.save(voc / folder / f"{name}.png")
        saliency = np.where(mask > 0, 230, 20).astype(np.uint8)
        Image.fromarray(saliency).save(voc / "Saliency" / f"{name}.png")
        (voc / "Annotations" / f"{name}.xml").write_text(_xml(name, classes, size))
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "train_aug.txt").write_text("\n".join(ids[:n_train]) + "\n")
    (lists / "train.txt").write_text("\n".join(ids[:n_train]) + "\n")
    (lists / "val.txt").write_text("\n".join(ids[n_train:]) + "\n")
    return voc


def tiny_config(voc: Path, work: Path) -> dict:
    """The whole pipeline on 40x48 images in seconds: tiny backbones, two iterations."""
    train = {"iterations": 2, "batch_size": 2, "checkpoint_every": 2, "log_every": 1}
    return {
        "work_dir": str(work),
        "device": "cpu",
        "data": {"root": str(voc), "num_workers": 0, "saliency_dir": "Saliency"},
        "attention": {
            "model": {"name": "SeeNet", "backbone": "mobilenetv3_small_050",
                      "pretrained": False, "hidden_channels": 8, "num_convs": 1},
            "transforms": {"scale_range": [40, 48], "crop_size": 32},
            "train": dict(train, lr_steps=[1]),
        },
        "maps": {"input_size": 32, "save_png": True, "overlays": 2},
        "proxy": {"overlays": 2},
        "segmentation": {
            "model": {"name": "DeepLabLargeFOV", "backbone": "mobilenetv3_small_050",
                      "pretrained": False, "hidden_channels": 8},
            "transforms": {"crop_size": 33},
            "train": train,
        },
        "evaluate": {"save_predictions": True, "overlays": 1},
    }
