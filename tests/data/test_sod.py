"""The salient-object data reader and its transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from seenet.data.sod import (
    SaliencyEvalTransform,
    SaliencyTrainTransform,
    SalientObjectDataset,
    load_mask,
)
from seenet.data.transforms import to_tensor


def write_pair(root, name, size=(12, 8), image_dir="images", mask_dir="masks", mask=None,
               image_suffix=".jpg", mask_suffix=".png"):  # fmt: skip
    w, h = size
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(name))
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(image).save(root / image_dir / f"{name}{image_suffix}")
    if mask is None:
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    if mask is not False:
        Image.fromarray(mask).save(root / mask_dir / f"{name}{mask_suffix}")
    return image


@pytest.fixture
def standard(tmp_path):
    for name in ("b", "a", "c"):
        write_pair(tmp_path, name)
    return tmp_path


def test_default_layout_sorted_ids_and_items(standard):
    data = SalientObjectDataset(standard)
    assert data.ids == ["a", "b", "c"] and len(data) == 3
    item = data[1]
    assert item["id"] == "b" and item["index"] == 1
    image = np.asarray(Image.open(standard / "images" / "b.jpg").convert("RGB"))
    torch.testing.assert_close(item["image"], to_tensor(image))
    assert item["mask"].dtype == torch.float32 and item["mask"].shape == (8, 12)
    assert item["mask"].sum() == 4 * 6 and set(item["mask"].unique().tolist()) == {0.0, 1.0}
    assert data[-1]["id"] == "c"
    with pytest.raises(IndexError):
        data[3]
    assert "images=3" in repr(data)


def test_mask_is_thresholded_at_128(tmp_path):
    mask = np.array([[0, 127, 128, 255], [1, 126, 129, 200]], np.uint8)
    write_pair(tmp_path, "x", size=(4, 2), mask=mask)
    assert load_mask(tmp_path / "masks" / "x.png").tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]
    item = SalientObjectDataset(tmp_path)[0]
    assert item["mask"].tolist() == [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]


def test_mask_modes(tmp_path):
    grey = np.array([[0, 255], [255, 0]], np.uint8)
    Image.fromarray(grey).convert("1").save(tmp_path / "bits.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "rgb.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    for name in ("bits", "rgb", "deep"):
        assert load_mask(tmp_path / f"{name}.png").tolist() == [[0, 1], [1, 0]], name
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read mask .*junk.png"):
        load_mask(tmp_path / "junk.png")


def test_missing_mask_names_the_file(standard):
    (standard / "masks" / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"mask not found for image .*b\.jpg: .*b\.png"):
        SalientObjectDataset(standard)


def test_mask_of_another_size_names_both_files(tmp_path):
    write_pair(tmp_path, "ok")
    write_pair(tmp_path, "bad", mask=np.zeros((8, 11), np.uint8))
    data = SalientObjectDataset(tmp_path)
    data[data.ids.index("ok")]
    with pytest.raises(ValueError, match=r"mask .*bad\.png is 11x8 \(WxH\), its image .*bad\.jpg "
                                         r"is 12x8"):  # fmt: skip
        data[data.ids.index("bad")]


def test_empty_data_set(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"empty: image folder .*images \(no \*\.jpg files\)"):
        SalientObjectDataset(tmp_path)
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(ValueError, match=r"split list is empty: .*empty\.txt"):
        SalientObjectDataset(tmp_path, split="empty.txt")
    with pytest.raises(ValueError, match="empty"):
        SalientObjectDataset(tmp_path, split=[])


def test_missing_folders_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="data root not found"):
        SalientObjectDataset(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        SalientObjectDataset(tmp_path)
    write_pair(tmp_path, "a")
    with pytest.raises(FileNotFoundError, match=r"image not found: .*zz\.jpg"):
        SalientObjectDataset(tmp_path, split=["a", "zz"])
    with pytest.raises(FileNotFoundError, match="split list not found"):
        SalientObjectDataset(tmp_path, split="train.txt")


def test_list_file_split(standard):
    (standard / "train.txt").write_text("c\n\nimages/a.jpg\n# a comment\nc\n")
    data = SalientObjectDataset(standard, split="train.txt")
    assert data.ids == ["c", "a"]
    absolute = SalientObjectDataset(standard, split=standard / "train.txt")
    assert absolute.ids == ["c", "a"]
    listed = SalientObjectDataset(standard, split=["b", "a", "b"])
    assert listed.ids == ["b", "a"]
    with pytest.raises(ValueError, match="split must be None, a list file or a list of ids"):
        SalientObjectDataset(standard, split=[1, 2])  # type: ignore[list-item]


def test_msra_b_single_folder(tmp_path):
    for name in ("0_1", "0_2"):
        write_pair(tmp_path, name, image_dir="MSRA-B", mask_dir="MSRA-B")
    data = SalientObjectDataset(tmp_path, image_dir="MSRA-B", mask_dir="MSRA-B")
    assert data.ids == ["0_1", "0_2"]  # the masks are not taken for images
    assert data[0]["mask"].sum() == 24
    # absolute folders and other suffixes
    write_pair(tmp_path, "p", image_dir="imgs", mask_dir="gt", image_suffix=".png",
               mask_suffix="_mask.png")  # fmt: skip
    other = SalientObjectDataset(tmp_path, image_dir=tmp_path / "imgs", mask_dir="gt",
                                 image_suffix=".png", mask_suffix="_mask.png")  # fmt: skip
    assert other.ids == ["p"] and other[0]["mask"].sum() == 24
    with pytest.raises(ValueError, match="cannot be told apart"):
        SalientObjectDataset(tmp_path, image_dir="MSRA-B", mask_dir="MSRA-B", mask_suffix=".jpg")


def test_train_transform_is_deterministic_per_key(standard):
    t = SaliencyTrainTransform(crop_size=10, scale_range=(0.5, 1.5))
    data = SalientObjectDataset(standard, transform=t, seed=3)
    a, b = data[(1, 12345)], data[(1, 12345)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert a["image"].shape == (3, 10, 10) and a["mask"].shape == (10, 10)
    others = [data[(1, s)] for s in range(8)]
    assert any(not torch.equal(o["image"], a["image"]) for o in others)
    # a plain index uses the data set's seed, the same every time
    assert torch.equal(data[2]["image"], data[2]["image"])
    assert set(torch.cat([o["mask"].flatten() for o in others]).unique().tolist()) <= {0.0, 1.0}


def test_train_transform_keeps_image_and_mask_aligned():
    # the mask marks exactly the white pixels of the image: any scale, crop and flip keeps that
    image = np.zeros((20, 30, 3), np.uint8)
    image[5:15, 3:12] = 255
    mask = (image[..., 0] > 0).astype(np.uint8)
    t = SaliencyTrainTransform(crop_size=(16, 24), scale_range=(0.9, 1.1))
    white = to_tensor(np.full((1, 1, 3), 255, np.uint8))[:, 0, 0]
    black = to_tensor(np.zeros((1, 1, 3), np.uint8))[:, 0, 0]
    for seed in range(6):
        x, y = t(Image.fromarray(image), mask, np.random.default_rng(seed))
        assert x.shape == (3, 16, 24) and y.shape == (16, 24)
        near_white = (x - white[:, None, None]).abs().amax(0) < 0.3
        near_black = (x - black[:, None, None]).abs().amax(0) < 0.3
        assert torch.all(y[near_white] == 1) and torch.all(y[near_black] == 0)


def test_train_transform_pads_with_background():
    t = SaliencyTrainTransform(crop_size=12, scale_range=(1.0, 1.0), flip=False)
    x, y = t(Image.new("RGB", (6, 4), (255, 255, 255)), np.ones((4, 6), np.uint8),
             np.random.default_rng(0))  # fmt: skip
    assert y.sum() == 24 and torch.all(y[4:] == 0) and torch.all(x[:, 4:] == 0)
    with pytest.raises(ValueError, match="mask has shape"):
        t(Image.new("RGB", (6, 4)), np.ones((4, 5), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="crop_size"):
        SaliencyTrainTransform(crop_size=0)
    with pytest.raises(ValueError, match="scale_range"):
        SaliencyTrainTransform(scale_range=(1.2, 0.8))
    assert "crop_size=(12, 12)" in repr(t)


def test_eval_transform(standard):
    data = SalientObjectDataset(standard, transform=SaliencyEvalTransform(size=(5, 7)))
    item = data[0]
    assert item["image"].shape == (3, 5, 7) and item["mask"].shape == (8, 12)
    both = SaliencyEvalTransform(size=6, resize_mask=True)
    x, y = both(Image.new("RGB", (12, 8)), np.ones((8, 12), np.uint8))
    assert x.shape == (3, 6, 6) and y.shape == (6, 6) and torch.all(y == 1)
    keep = SaliencyEvalTransform()
    x, y = keep(Image.new("RGB", (12, 8)), np.zeros((8, 12), np.uint8))
    assert x.shape == (3, 8, 12) and y.shape == (8, 12)
    with pytest.raises(ValueError, match="size must be None"):
        SaliencyEvalTransform(size=(3, 0))


def test_works_with_a_data_loader(standard):
    data = SalientObjectDataset(standard, transform=SaliencyTrainTransform(crop_size=8))
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=3)))
    assert batch["image"].shape == (3, 3, 8, 8) and batch["mask"].shape == (3, 8, 8)
    assert batch["id"] == ["a", "b", "c"]
