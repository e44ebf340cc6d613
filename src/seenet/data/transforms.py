"""Training and test transforms of the paper's two networks (SPEC section 1).

Randomness comes from an explicit :class:`numpy.random.Generator` passed to every call, so a
sample's augmentation depends only on the seed it is given (the training engine derives one per
sample from the run's seed, the epoch and the index): results do not depend on the number of
data-loading workers, and a resumed run sees exactly the crops an uninterrupted one would.

- :class:`AttentionTrainTransform`: ResNet-style scale augmentation (shorter side resized to a
  random length in [256, 480]), a random 224 crop and a horizontal flip (paper §5.1).
- :class:`SegmentationTrainTransform`: DeepLab's random scale in [0.5, 1.5], a random 321 crop with
  the image padded by the mean colour and the label by 255 (ignored), and a horizontal flip.
- :func:`to_tensor`: ImageNet normalisation; :func:`resize_image` for test-time resizing.

Example:
    >>> import numpy as np
    >>> from PIL import Image
    >>> image = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    >>> t = AttentionTrainTransform(scale_range=(32, 48), crop_size=24)
    >>> t(image, np.random.default_rng(0)).shape
    torch.Size([3, 24, 24])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "to_tensor",
    "resize_image",
    "AttentionTrainTransform",
    "SegmentationTrainTransform",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def to_tensor(
    image: Image.Image | np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Convert an RGB image to a normalised float tensor.

    Args:
        image: PIL image or uint8 array (H, W, 3).
        mean: Per-channel mean, in [0, 1] units.
        std: Per-channel standard deviation.

    Returns:
        Tensor (3, H, W), ``(x / 255 - mean) / std``.

    Example:
        >>> to_tensor(np.full((2, 2, 3), 255, np.uint8))[:, 0, 0]
        tensor([2.2489, 2.4286, 2.6400])
    """
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be an RGB image (H, W, 3), got shape {array.shape}")
    x = torch.from_numpy(np.array(array, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - mean_t) / std_t


def resize_image(image: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """Resize an image bilinearly to ``size`` (an int gives a square; a pair is (H, W)).

    Example:
        >>> resize_image(Image.new("RGB", (60, 40)), 24).size
        (24, 24)
    """
    h, w = (size, size) if isinstance(size, int) else size
    return image.resize((int(w), int(h)), Image.BILINEAR)


def _check_range(scale_range: Sequence[float], name: str) -> tuple[float, float]:
    if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
        raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {scale_range}")
    return float(scale_range[0]), float(scale_range[1])


def _crop_offsets(
    height: int, width: int, crop: int, rng: np.random.Generator
) -> tuple[int, int]:
    top = int(rng.integers(0, height - crop + 1)) if height > crop else 0
    left = int(rng.integers(0, width - crop + 1)) if width > crop else 0
    return top, left


class AttentionTrainTransform:
    """Scale augmentation, random crop and flip for the attention network (paper §5.1, [8]).

    Args:
        scale_range: Shorter-side length range, inclusive (paper: 256 to 480).
        crop_size: Side of the square crop (224).
        flip: Horizontal flip with probability 0.5.
        mean: Normalisation mean.
        std: Normalisation standard deviation.

    The crop is padded with the mean colour (zeros after normalisation) when ``crop_size`` exceeds
    the resized image.
    """

    def __init__(
        self,
        scale_range: Sequence[int] = (256, 480),
        crop_size: int = 224,
        flip: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        low, high = _check_range(scale_range, "scale_range")
        if int(crop_size) < 1:
            raise ValueError(f"crop_size must be a positive integer, got {crop_size}")
        self.scale_range = (int(low), int(high))
        self.crop_size = int(crop_size)
        self.flip = bool(flip)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        """Transform one RGB image; returns a (3, crop, crop) tensor."""
        short = int(rng.integers(self.scale_range[0], self.scale_range[1] + 1))
        w, h = image.size
        scale = short / min(w, h)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        image = image.resize((new_w, new_h), Image.BILINEAR)
        x = to_tensor(image, self.mean, self.std)
        c = self.crop_size
        top, left = _crop_offsets(new_h, new_w, c, rng)
        x = x[:, top : top + c, left : left + c]
        if x.shape[1] < c or x.shape[2] < c:
            x = torch.nn.functional.pad(x, (0, c - x.shape[2], 0, c - x.shape[1]))
        if self.flip and rng.random() < 0.5:
            x = x.flip(-1)
        return x.contiguous()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(scale_range={self.scale_range}, crop_size={self.crop_size}, "
            f"flip={self.flip})"
        )


class SegmentationTrainTransform:
    """DeepLab's random scale, padded random crop and flip for the segmentation network.

    Args:
        scale_range: Range of the random scale factor (0.5 to 1.5).
        crop_size: Side of the square crop (321).
        flip: Horizontal flip with probability 0.5.
        ignore_index: Label of padded pixels (255), ignored by the loss.
        mean: Normalisation mean (the image is padded with it, i.e. zeros after normalisation).
        std: Normalisation standard deviation.

    Example:
        >>> t = SegmentationTrainTransform(crop_size=16)
        >>> image = Image.new("RGB", (10, 8))
        >>> x, y = t(image, np.ones((8, 10), np.uint8), np.random.default_rng(0))
        >>> x.shape, y.shape, y.dtype, int(y.max())
        (torch.Size([3, 16, 16]), torch.Size([16, 16]), torch.int64, 255)
    """

    def __init__(
        self,
        scale_range: Sequence[float] = (0.5, 1.5),
        crop_size: int = 321,
        flip: bool = True,
        ignore_index: int = 255,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.scale_range = _check_range(scale_range, "scale_range")
        if int(crop_size) < 1:
            raise ValueError(f"crop_size must be a positive integer, got {crop_size}")
        self.crop_size = int(crop_size)
        self.flip = bool(flip)
        self.ignore_index = int(ignore_index)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(
        self, image: Image.Image, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform an image and its label map (H, W); returns (3, c, c) float and (c, c) int64."""
        w, h = image.size
        if label.shape != (h, w):
            raise ValueError(f"label has shape {label.shape}, the image is {(h, w)}")
        scale = float(rng.uniform(self.scale_range[0], self.scale_range[1]))
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        image = image.resize((new_w, new_h), Image.BILINEAR)
        label_img = Image.fromarray(np.asarray(label, dtype=np.uint8)).resize(
            (new_w, new_h), Image.NEAREST
        )
        x = to_tensor(image, self.mean, self.std)
        y = torch.from_numpy(np.asarray(label_img, dtype=np.int64).copy())
        c = self.crop_size
        pad_h, pad_w = max(0, c - new_h), max(0, c - new_w)
        if pad_h or pad_w:
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h))
            y = torch.nn.functional.pad(y, (0, pad_w, 0, pad_h), value=self.ignore_index)
        top, left = _crop_offsets(x.shape[1], x.shape[2], c, rng)
        x = x[:, top : top + c, left : left + c]
        y = y[top : top + c, left : left + c]
        if self.flip and rng.random() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x.contiguous(), y.contiguous()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(scale_range={self.scale_range}, crop_size={self.crop_size}, "
            f"flip={self.flip}, ignore_index={self.ignore_index})"
        )
