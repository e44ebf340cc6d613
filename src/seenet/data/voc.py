"""PASCAL VOC 2012 (+ SBD) in its standard layout: split lists, images, labels, saliency.

The layout is the one VOC and the SBD augmentation are distributed in::

    VOC2012/
      JPEGImages/{id}.jpg
      SegmentationClass/{id}.png          # VOC's own masks (val ground truth)
      SegmentationClassAug/{id}.png       # VOC + SBD masks (see seenet.data.sbd)
      Annotations/{id}.xml
      ImageSets/Segmentation/{train_aug,train,val}.txt

Image-level labels come from the masks (the classes present, ids 1..20; 0 background and 255
ignore not counted) or from the XML annotations. Saliency folders are read with
:class:`seenet.data.saliency.SaliencyFolder` (re-exported here). Every reader checks its file: a
missing file raises :class:`FileNotFoundError` and an unreadable one :class:`ValueError`, both
naming the path.

Samples carry their own random seed (see :mod:`seenet.data.transforms`): a dataset accepts either an
index or an ``(index, seed)`` pair, which the training engine's sampler yields.

Example:
    >>> import numpy as np
    >>> labels_from_mask(np.array([[0, 3], [255, 15]], np.uint8)).nonzero()[0].tolist()
    [2, 14]
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .._classes import VOC_FOREGROUND, voc_palette
from .._io import atomic_write, read_image_file
from ..engine.seeding import sample_seed
from .saliency import SaliencyFolder
from .transforms import to_tensor

__all__ = [
    "read_split",
    "load_image",
    "load_label",
    "save_label",
    "labels_from_mask",
    "labels_from_xml",
    "sample_seed",
    "VOCImageLabels",
    "VOCSegmentation",
    "LabelFolder",
    "SaliencyFolder",
]


def _resolve(root: str | os.PathLike | None, folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    if folder.is_absolute() or root is None:
        return folder
    return Path(root) / folder


def read_split(root: str | os.PathLike | None, split: str | os.PathLike) -> list[str]:
    """Read the image ids of a split.

    Args:
        root: The ``VOC2012`` folder.
        split: A split name (``"train_aug"``, ``"val"``) looked up as
            ``root/ImageSets/Segmentation/{split}.txt``, or the path of a list file. Lines may be
            bare ids or the ``"/JPEGImages/{id}.jpg /SegmentationClassAug/{id}.png"`` pairs some
            SBD releases use.

    Returns:
        The ids, in file order, without duplicates.

    Raises:
        FileNotFoundError: If the list file does not exist.
        ValueError: If it is empty.
    """
    split = os.fspath(split)
    if split.endswith(".txt") or os.sep in split or "/" in split:
        path = Path(split)
        if not path.is_file() and not path.is_absolute() and root is not None:
            path = Path(root) / split
    else:
        path = _resolve(root, Path("ImageSets") / "Segmentation" / f"{split}.txt")
    if not path.is_file():
        raise FileNotFoundError(f"split list not found: {path}")
    ids: list[str] = []
    seen: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        token = Path(line.split()[0]).stem
        if token not in seen:
            seen.add(token)
            ids.append(token)
    if not ids:
        raise ValueError(f"split list is empty: {path}")
    return ids


def load_image(path: str | os.PathLike) -> Image.Image:
    """Read an image as RGB, fully decoded.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If it cannot be decoded (truncated, corrupt, not an image), naming the file.
    """
    return read_image_file(path, "image", lambda image: image.convert("RGB"))


def _label_ids(image: Image.Image) -> np.ndarray:
    if image.mode not in ("P", "L", "I", "I;16"):
        raise ValueError(f"expected a palette or grey PNG of label ids, got mode {image.mode!r}")
    return np.asarray(image)


def load_label(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG (palette or grey) as a uint8 (H, W) array of label ids.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If it cannot be decoded or is a colour (RGB) image, naming the file.
    """
    array = read_image_file(path, "label map", _label_ids)
    if array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 255:
            raise ValueError(f"cannot read label map {path}: ids outside [0, 255]")
        array = array.astype(np.uint8)
    return array


def save_label(path: str | os.PathLike, label: np.ndarray | torch.Tensor) -> None:
    """Write a label map as a VOC-palette PNG, atomically.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
        >>> save_label(p, np.array([[0, 1], [255, 20]]))
        >>> load_label(p).tolist()
        [[0, 1], [255, 20]]
    """
    if isinstance(label, torch.Tensor):
        label = label.detach().cpu().numpy()
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be a (H, W) map, got shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError("label ids must be in [0, 255]")
    image = Image.fromarray(label.astype(np.uint8), mode="P")
    image.putpalette(voc_palette().reshape(-1).tolist())
    with atomic_write(path, "wb") as f:
        image.save(f, format="PNG")


def labels_from_mask(mask: np.ndarray, num_classes: int = 20) -> np.ndarray:
    """Image-level multi-hot labels from a mask: class ``c`` present iff id ``c + 1`` occurs.

    Args:
        mask: (H, W) label ids; 0 (background) and ids above ``num_classes`` (255) are ignored.
        num_classes: Number of foreground classes.

    Returns:
        float32 (num_classes,) of 0/1.
    """
    ids = np.unique(np.asarray(mask))
    ids = ids[(ids >= 1) & (ids <= num_classes)].astype(np.int64)
    out = np.zeros(num_classes, dtype=np.float32)
    out[ids - 1] = 1.0
    return out


def labels_from_xml(
    path: str | os.PathLike, class_names: Sequence[str] = VOC_FOREGROUND
) -> np.ndarray:
    """Image-level labels from a VOC XML annotation (every ``<object><name>``, difficult included).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If it is not valid XML or names an unknown class, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"cannot read annotation {path}: {e}") from None
    index = {name: i for i, name in enumerate(class_names)}
    out = np.zeros(len(class_names), dtype=np.float32)
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in index:
            raise ValueError(f"{path}: unknown class {name!r}")
        out[index[name]] = 1.0
    return out


def _split_key(key: int | tuple[int, int], seed: int) -> tuple[int, int]:
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return int(key), sample_seed(seed, 0, int(key))


class _VOCBase(torch.utils.data.Dataset):
    def __init__(
        self,
        root: str | os.PathLike,
        split: str | os.PathLike,
        image_dir: str = "JPEGImages",
        image_suffix: str = ".jpg",
        ids: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data root not found: {self.root}")
        self.ids = list(ids) if ids is not None else read_split(self.root, split)
        self.image_dir = _resolve(self.root, image_dir)
        self.image_suffix = image_suffix
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, index: int) -> Path:
        """Path of the image of sample ``index``."""
        return self.image_dir / f"{self.ids[index]}{self.image_suffix}"

    def load_image(self, index: int) -> Image.Image:
        """The RGB image of sample ``index``."""
        return load_image(self.image_path(index))


class VOCImageLabels(_VOCBase):
    """Images with image-level labels, for the attention network.

    Args:
        root: The ``VOC2012`` folder.
        split: Split name or list file (see :func:`read_split`).
        image_dir: Image folder, relative to ``root`` unless absolute.
        label_dir: Mask folder giving the labels when ``labels_from="masks"``.
        annotation_dir: XML folder used when ``labels_from="xml"``.
        labels_from: ``"masks"`` or ``"xml"``.
        image_suffix: Image file extension.
        num_classes: Number of foreground classes.
        transform: ``transform(image, rng) -> tensor``; ``None`` normalises the full image.
        seed: Seed for samples indexed without their own.
        ids: Explicit ids instead of reading ``split``.

    Items are dicts with ``image`` (3, H, W), ``labels`` (K,) float 0/1, ``id`` and ``index``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | os.PathLike = "train_aug",
        image_dir: str = "JPEGImages",
        label_dir: str = "SegmentationClassAug",
        annotation_dir: str = "Annotations",
        labels_from: str = "masks",
        image_suffix: str = ".jpg",
        num_classes: int = 20,
        transform: Callable[[Image.Image, np.random.Generator], torch.Tensor] | None = None,
        seed: int = 0,
        ids: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root, split, image_dir, image_suffix, ids, seed)
        if labels_from not in ("masks", "xml"):
            raise ValueError(f"labels_from must be 'masks' or 'xml', got {labels_from!r}")
        self.labels_from = labels_from
        self.label_dir = _resolve(self.root, label_dir)
        self.annotation_dir = _resolve(self.root, annotation_dir)
        self.num_classes = int(num_classes)
        self.transform = transform

    def labels(self, index: int) -> np.ndarray:
        """Image-level labels (K,) of sample ``index``."""
        name = self.ids[index]
        if self.labels_from == "xml":
            class_names = VOC_FOREGROUND if self.num_classes == 20 else None
            if class_names is None:
                raise ValueError("labels_from='xml' needs the 20 VOC classes")
            return labels_from_xml(self.annotation_dir / f"{name}.xml", class_names)
        return labels_from_mask(load_label(self.label_dir / f"{name}.png"), self.num_classes)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = _split_key(key, self.seed)
        image = self.load_image(index)
        labels = self.labels(index)
        if self.transform is None:
            x = to_tensor(image)
        else:
            x = self.transform(image, np.random.default_rng(seed))
        return {
            "image": x,
            "labels": torch.from_numpy(labels),
            "id": self.ids[index],
            "index": index,
        }


class VOCSegmentation(_VOCBase):
    """Images with label maps (ground truth or proxy labels), for the segmentation network.

    Args:
        root: The ``VOC2012`` folder.
        split: Split name or list file.
        label_dir: Folder of label PNGs named ``{id}.png``, relative to ``root`` unless absolute.
        image_dir: Image folder.
        image_suffix: Image file extension.
        transform: ``transform(image, label, rng) -> (image, label)``; ``None`` returns the
            normalised full image and its label map.
        seed: Seed for samples indexed without their own.
        ids: Explicit ids instead of reading ``split``.

    Items are dicts with ``image`` (3, H, W), ``label`` (H, W) int64, ``id`` and ``index``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | os.PathLike = "train_aug",
        label_dir: str | os.PathLike = "SegmentationClassAug",
        image_dir: str = "JPEGImages",
        image_suffix: str = ".jpg",
        transform: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
        seed: int = 0,
        ids: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root, split, image_dir, image_suffix, ids, seed)
        self.labels = LabelFolder(_resolve(self.root, label_dir))
        self.transform = transform

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = _split_key(key, self.seed)
        image = self.load_image(index)
        label = self.labels[self.ids[index]]
        if label.shape != (image.size[1], image.size[0]):
            raise ValueError(
                f"label map {self.labels.path(self.ids[index])} is {label.shape}, its image is "
                f"{(image.size[1], image.size[0])}"
            )
        if self.transform is None:
            x, y = to_tensor(image), torch.from_numpy(label.astype(np.int64))
        else:
            x, y = self.transform(image, label, np.random.default_rng(seed))
        return {"image": x, "label": y, "id": self.ids[index], "index": index}


class LabelFolder:
    """A folder of label PNGs (ground truth, proxy labels or predictions) named ``{id}.png``.

    Example:
        >>> import tempfile
        >>> folder = LabelFolder(tempfile.mkdtemp())
        >>> folder["2007_000032"]
        Traceback (most recent call last):
        ...
        FileNotFoundError: label map not found: .../2007_000032.png
    """

    def __init__(self, root: str | os.PathLike, suffix: str = ".png") -> None:
        self.root = Path(root)
        self.suffix = suffix

    def path(self, image_id: str) -> Path:
        """The file of ``image_id``."""
        return self.root / f"{image_id}{self.suffix}"

    def __contains__(self, image_id: str) -> bool:
        return self.path(image_id).is_file()

    def __getitem__(self, image_id: str) -> np.ndarray:
        return load_label(self.path(image_id))
