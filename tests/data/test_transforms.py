from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from seenet.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AttentionTrainTransform,
    SegmentationTrainTransform,
    to_tensor,
)


def _gradient_image(h: int, w: int) -> Image.Image:
    x = np.zeros((h, w, 3), np.uint8)
    x[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    x[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    return Image.fromarray(x)


def test_to_tensor_is_imagenet_normalisation():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    expected = (image / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(
        to_tensor(image).permute(1, 2, 0).numpy(), expected, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="RGB"):
        to_tensor(np.zeros((4, 4), np.uint8))


def test_attention_transform_scales_shorter_side_within_range():
    # the crop's pixel footprint tells the scale: a 100x200 gradient resized so that its shorter
    # side is s; the horizontal red ramp then spans 255 over 2s pixels
    t = AttentionTrainTransform(scale_range=(256, 480), crop_size=224, flip=False)
    image = _gradient_image(100, 200)
    steps = []
    for seed in range(20):
        x = t(image, np.random.default_rng(seed))
        assert x.shape == (3, 224, 224)
        red = x[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
        steps.append(float((red[-1] - red[0]) / 223))
    short = [1.0 / (2 * s) for s in steps]  # 1 / (2s) per pixel, 1.0 over 2s pixels
    assert 250 <= min(short) and max(short) <= 490
    assert max(short) - min(short) > 50  # it really varies


def test_attention_transform_pads_small_images_and_flips():
    t = AttentionTrainTransform(scale_range=(8, 8), crop_size=12, flip=True)
    image = _gradient_image(8, 16)
    outs = [t(image, np.random.default_rng(s)) for s in range(16)]
    assert all(o.shape == (3, 12, 12) for o in outs)
    assert all(torch.all(o[:, 8:, :] == 0) for o in outs)  # padded rows hold the mean
    increasing = [bool(o[0, 0, 5] > o[0, 0, 0]) for o in outs]
    assert any(increasing) and not all(increasing)


def test_segmentation_transform_keeps_image_and_label_aligned():
    t = SegmentationTrainTransform(scale_range=(0.5, 1.5), crop_size=33, ignore_index=255)
    h, w = 30, 40
    label = np.zeros((h, w), np.uint8)
    label[:, 20:] = 7
    image = np.zeros((h, w, 3), np.uint8)
    image[:, 20:] = 255
    for seed in range(20):
        x, y = t(Image.fromarray(image), label, np.random.default_rng(seed))
        assert x.shape == (3, 33, 33) and y.shape == (33, 33)
        pad = y == 255
        white = x[0] > 0.5  # normalised black is -2.1, white 2.2
        mismatch = (white != (y == 7)) & ~pad
        # nearest label follows the bilinear image, up to the one blended column at the edge
        assert int(mismatch.sum()) <= 33 and int(mismatch.sum(dim=1).max()) <= 1
        assert torch.all(x[:, pad] == 0)  # padding: mean colour and ignore label
    with pytest.raises(ValueError, match="label"):
        t(Image.fromarray(image), label[:5], np.random.default_rng(0))


def test_segmentation_transform_scale_range_is_used():
    t = SegmentationTrainTransform(scale_range=(0.5, 1.5), crop_size=200, flip=False)
    label = np.ones((40, 40), np.uint8)
    sizes = []
    for seed in range(30):
        _, y = t(Image.new("RGB", (40, 40)), label, np.random.default_rng(seed))
        sizes.append(int((y[0] == 1).sum()))
    assert 20 <= min(sizes) < 25 and 55 < max(sizes) <= 60


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale_range"):
        AttentionTrainTransform(scale_range=(480, 256))
    with pytest.raises(ValueError, match="crop_size"):
        SegmentationTrainTransform(crop_size=0)
