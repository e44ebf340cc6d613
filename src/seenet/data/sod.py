"""Salient-object data sets in their usual layout: images plus binary object masks.

MSRA-B, DUTS-TR, ECSSD, HKU-IS and their kind ship an image folder and a folder of mask PNGs
named like the images (``0001.jpg`` and ``0001.png``); MSRA-B keeps both in one folder. The
folder names and file suffixes are arguments of :class:`SalientObjectDataset`::

    root/
      images/<id>.jpg          (image_dir, image_suffix)
      masks/<id>.png           (mask_dir, mask_suffix); may be the image folder itself
      train.txt                (optional list of ids, one per line)

A mask is read as grey levels; it is *object* where the grey value is at least 128, so
anti-aliased edges and JPEG artefacts of a non-binary mask are thresholded away (a 16-bit mask is
first scaled to 8 bits, a colour one converted to grey). Items are dicts with the normalised
``image`` (3, H, W), the ``mask`` (H, W) of 0.0 / 1.0, ``id`` and ``index``.

As :class:`seenet.data.voc.VOCSegmentation`, the data set takes either an index or the
``(index, seed)`` pair that the training engine's sampler yields, so the augmentation of a sample
depends only on its seed. :class:`SaliencyTrainTransform` (random scale, crop or pad, flip, the
same for image and mask) and :class:`SaliencyEvalTransform` (optional resize) are its transforms.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a", "b"):
    ...     Image.new("RGB", (6, 4)).save(root / f"{name}.jpg")
    ...     Image.new("L", (6, 4), 255).save(root / f"{name}.png")
    >>> data = SalientObjectDataset(root, image_dir=".", mask_dir=".")  # MSRA-B style
    >>> len(data), data[1]["id"], data[1]["image"].shape, data[1]["mask"].sum().item()
    (2, 'b', torch.Size([3, 4, 6]), 24.0)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from .._io import read_image_file
from .._validation import check_size
from .transforms import IMAGENET_MEAN, IMAGENET_STD, _check_range, to_tensor
from .voc import _resolve, load_image, read_split, sample_seed

__all__ = [
    "MASK_THRESHOLD",
    "SalientObjectDataset",
    "SaliencyTrainTransform",
    "SaliencyEvalTransform",
    "load_mask",
]

#: Grey level from which a mask pixel is object (``>= 128``).
MASK_THRESHOLD = 128

Split = Union[str, os.PathLike, Sequence[str], None]
JointTransform = Callable[
    [Image.Image, np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]
]


def _grey(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        return np.clip(np.floor(arr / 257.0), 0, 255).astype(np.uint8)
    if image.mode == "F":
        raise ValueError("floating-point images are not mask PNGs (mode 'F')")
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """Read an object mask as a uint8 (H, W) array of 0 and 1 (grey value ``>= 128`` is object).

    Args:
        path: A mask image (grey, 1-bit, palette or colour PNG; any format PIL reads).

    Returns:
        uint8 (H, W), 1 on the object.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If it cannot be decoded, naming the file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.png"
        >>> Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8)).save(p)
        >>> load_mask(p).tolist()
        [[0, 0, 1, 1]]
    """
    grey = read_image_file(path, "mask", _grey)
    return (grey >= MASK_THRESHOLD).astype(np.uint8)


def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a 0/1 mask bilinearly and threshold it at one half (smoother than nearest)."""
    if mask.shape == (height, width):
        return mask
    image = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.BILINEAR)
    return (np.asarray(image) >= MASK_THRESHOLD).astype(np.uint8)




class SaliencyTrainTransform:
    """Random scale, crop (padding what is missing) and flip of an image and its object mask.

    The image is resized bilinearly; the mask bilinearly too and thresholded at one half, which
    keeps its edges smooth. Where the scaled image is smaller than the crop it is padded with the
    mean colour (zeros after normalisation) and the mask with background. Image and mask get the
    same scale, crop and flip, drawn from the generator in that order.

    Args:
        crop_size: Side of the square crop, or ``(H, W)``.
        scale_range: Range of the random scale factor, ``(low, high)``.
        flip: Horizontal flip with probability 0.5.
        mean: Normalisation mean.
        std: Normalisation standard deviation.

    Example:
        >>> t = SaliencyTrainTransform(crop_size=8)
        >>> x, y = t(Image.new("RGB", (10, 6)), np.ones((6, 10), np.uint8),
        ...          np.random.default_rng(0))
        >>> x.shape, y.shape, y.dtype, sorted(y.unique().tolist())
        (torch.Size([3, 8, 8]), torch.Size([8, 8]), torch.float32, [0.0, 1.0])
    """

    def __init__(
        self,
        crop_size: int | tuple[int, int] = 224,
        scale_range: Sequence[float] = (0.75, 1.25),
        flip: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        size = check_size(crop_size, "crop_size")
        assert size is not None
        self.crop_size = size
        self.scale_range = _check_range(tuple(scale_range), "scale_range")
        self.flip = bool(flip)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(
        self, image: Image.Image, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform an RGB image and its 0/1 mask (H, W); returns (3, h, w) and (h, w) floats."""
        w, h = image.size
        mask = np.asarray(mask)
        if mask.shape != (h, w):
            raise ValueError(f"mask has shape {mask.shape}, the image is {(h, w)}")
        scale = float(rng.uniform(self.scale_range[0], self.scale_range[1]))
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        image = image.resize((new_w, new_h), Image.BILINEAR)
        mask = _resize_mask(mask, new_w, new_h)
        x = to_tensor(image, self.mean, self.std)
        y = torch.from_numpy(mask.astype(np.float32))
        ch, cw = self.crop_size
        pad_h, pad_w = max(0, ch - new_h), max(0, cw - new_w)
        if pad_h or pad_w:
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h))
            y = torch.nn.functional.pad(y, (0, pad_w, 0, pad_h))
        top = int(rng.integers(0, x.shape[1] - ch + 1))
        left = int(rng.integers(0, x.shape[2] - cw + 1))
        x = x[:, top : top + ch, left : left + cw]
        y = y[top : top + ch, left : left + cw]
        if self.flip and rng.random() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x.contiguous(), y.contiguous()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, scale_range={self.scale_range}, "
            f"flip={self.flip})"
        )


class SaliencyEvalTransform:
    """Test-time transform: normalise the image, optionally resize it (and the mask).

    The field evaluates at the ground truth's own resolution (predictions are resized to it, see
    :meth:`seenet.models.SaliencyNet.predict`'s ``size``), so by default the mask keeps its size
    while the image may be resized for the network.

    Args:
        size: ``None`` keeps the image's size; an int (square) or ``(H, W)`` resizes it
            bilinearly.
        resize_mask: Also resize the mask to ``size`` (bilinear, thresholded at one half), so
            that samples of different sizes can be batched.
        mean: Normalisation mean.
        std: Normalisation standard deviation.

    Example:
        >>> t = SaliencyEvalTransform(size=4)
        >>> x, y = t(Image.new("RGB", (10, 6)), np.ones((6, 10), np.uint8))
        >>> x.shape, y.shape
        (torch.Size([3, 4, 4]), torch.Size([6, 10]))
    """

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        resize_mask: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.size = check_size(size, "size")
        self.resize_mask = bool(resize_mask)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(
        self, image: Image.Image, mask: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform an RGB image and its 0/1 mask; ``rng`` is not used."""
        mask = np.asarray(mask)
        if mask.shape != (image.size[1], image.size[0]):
            raise ValueError(f"mask has shape {mask.shape}, the image is {image.size[::-1]}")
        if self.size is not None:
            h, w = self.size
            image = image.resize((w, h), Image.BILINEAR)
            if self.resize_mask:
                mask = _resize_mask(mask, w, h)
        x = to_tensor(image, self.mean, self.std)
        return x, torch.from_numpy(mask.astype(np.float32))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, resize_mask={self.resize_mask})"


def _list_ids(image_dir: Path, suffix: str) -> list[str]:
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    names = (p.name for p in image_dir.iterdir() if p.is_file())
    return sorted(n[: -len(suffix)] for n in names if n.endswith(suffix) and n != suffix)


class SalientObjectDataset(torch.utils.data.Dataset):
    """Images with binary object masks (MSRA-B, DUTS-TR, ECSSD layouts) for a saliency network.

    Args:
        root: The data set's folder.
        image_dir: Image folder, relative to ``root`` unless absolute (``"."`` for ``root``).
        mask_dir: Mask folder, likewise; may be the image folder (MSRA-B).
        image_suffix: Image file ending (``".jpg"``).
        mask_suffix: Mask file ending (``".png"``); must differ from ``image_suffix`` when both
            live in one folder.
        split: ``None``: every ``*{image_suffix}`` file of the image folder, sorted by id; the
            path of a list file of ids, one per line (relative to ``root`` unless absolute; lines
            may also be file names or paths, their stem is the id); or a sequence of ids.
        transform: ``transform(image, mask, rng) -> (image (3, h, w), mask (h, w))`` with a PIL
            RGB image, a uint8 0/1 mask (H, W) and a :class:`numpy.random.Generator`, e.g.
            :class:`SaliencyTrainTransform`; ``None`` returns the normalised full image.
        seed: Seed for samples indexed without their own.

    Raises:
        FileNotFoundError: If ``root``, the image folder, the list file, an image listed in the
            split or the mask of an image is missing (the message names the file).
        ValueError: If the data set has no image, or the split is not a list of ids; when a
            sample is read, if its mask's size differs from its image's (naming both files).

    Items are dicts with ``image`` (3, H, W) float, ``mask`` (H, W) float of 0 and 1, ``id`` and
    ``index``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        image_dir: str | os.PathLike = "images",
        mask_dir: str | os.PathLike = "masks",
        image_suffix: str = ".jpg",
        mask_suffix: str = ".png",
        split: Split = None,
        transform: JointTransform | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data root not found: {self.root}")
        for value, name in ((image_suffix, "image_suffix"), (mask_suffix, "mask_suffix")):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string such as '.png', got {value!r}")
        self.image_dir = _resolve(self.root, image_dir)
        self.mask_dir = _resolve(self.root, mask_dir)
        if image_suffix == mask_suffix and self.image_dir.resolve() == self.mask_dir.resolve():
            raise ValueError(
                f"image_suffix and mask_suffix are both {image_suffix!r} in one folder "
                f"({self.image_dir}); images and masks cannot be told apart"
            )
        self.image_suffix, self.mask_suffix = image_suffix, mask_suffix
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be callable or None, got {transform!r}")
        self.transform = transform
        self.seed = int(seed)
        if split is None:
            ids = _list_ids(self.image_dir, image_suffix)
            where = f"image folder {self.image_dir} (no *{image_suffix} files)"
        elif isinstance(split, (str, os.PathLike)):
            path = Path(split)
            if not path.is_absolute() and not path.is_file():
                path = self.root / path
            if not path.is_file():
                raise FileNotFoundError(f"split list not found: {path}")
            ids = read_split(None, path.resolve())  # an empty list raises, naming the file
            where = f"split list {path}"
        elif isinstance(split, Sequence) and all(isinstance(i, str) for i in split):
            ids = list(dict.fromkeys(split))
            where = "split (an empty list of ids)"
        else:
            raise ValueError(f"split must be None, a list file or a list of ids, got {split!r}")
        if not ids:
            raise ValueError(f"the data set is empty: {where}")
        for name in ids:
            image = self.image_path_of(name)
            if not image.is_file():
                raise FileNotFoundError(f"image not found: {image}")
            mask = self.mask_path_of(name)
            if not mask.is_file():
                raise FileNotFoundError(f"mask not found for image {image}: {mask}")
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def image_path_of(self, image_id: str) -> Path:
        """Path of the image of ``image_id``."""
        return self.image_dir / f"{image_id}{self.image_suffix}"

    def mask_path_of(self, image_id: str) -> Path:
        """Path of the mask of ``image_id``."""
        return self.mask_dir / f"{image_id}{self.mask_suffix}"

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        """The RGB image and its uint8 0/1 mask (H, W) of sample ``index``, sizes checked."""
        name = self.ids[index]
        image = load_image(self.image_path_of(name))
        mask = load_mask(self.mask_path_of(name))
        if mask.shape != (image.size[1], image.size[0]):
            raise ValueError(
                f"mask {self.mask_path_of(name)} is {mask.shape[1]}x{mask.shape[0]} (WxH), its "
                f"image {self.image_path_of(name)} is {image.size[0]}x{image.size[1]}"
            )
        return image, mask

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, (tuple, list)):
            index, seed = int(key[0]), int(key[1])
        else:
            index, seed = int(key), None
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        if seed is None:  # as VOCSegmentation does for a plain index
            seed = sample_seed(self.seed, 0, index)
        image, mask = self.load(index)
        if self.transform is None:
            x, y = to_tensor(image), torch.from_numpy(mask.astype(np.float32))
        else:
            x, y = self.transform(image, mask, np.random.default_rng(seed))
        return {"image": x, "mask": y, "id": self.ids[index], "index": index}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, images={len(self)}, "
            f"image_dir={str(self.image_dir)!r}, mask_dir={str(self.mask_dir)!r})"
        )
