from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from seenet.data import transforms as T
from seenet.data.voc import (
    LabelFolder,
    SaliencyFolder,
    VOCImageLabels,
    VOCSegmentation,
    labels_from_mask,
    labels_from_xml,
    load_image,
    load_label,
    read_split,
    save_label,
)


def test_read_split_names_and_sbd_pairs(tiny_voc, tmp_path):
    assert read_split(tiny_voc, "train_aug") == [f"2007_{i:06d}" for i in range(6)]
    assert len(read_split(tiny_voc, "val")) == 3
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("/JPEGImages/a.jpg /SegmentationClassAug/a.png\n\n/JPEGImages/b.jpg x\na\n")
    assert read_split(None, pairs) == ["a", "b"]
    with pytest.raises(FileNotFoundError, match="nosuch.txt"):
        read_split(tiny_voc, "nosuch")


def test_image_labels_from_masks_and_xml_agree(tiny_voc):
    masks = VOCImageLabels(tiny_voc, "train_aug")
    xml = VOCImageLabels(tiny_voc, "train_aug", labels_from="xml")
    for i in range(len(masks)):
        np.testing.assert_array_equal(masks.labels(i), xml.labels(i))
    # image 1 holds classes 1 and 2 (see tiny_voc.py); 255 boundaries are not a class
    assert masks.labels(1).nonzero()[0].tolist() == [1, 2]
    item = masks[0]
    assert item["image"].shape == (3, 40, 48) and item["labels"].shape == (20,)
    assert item["id"] == "2007_000000"


def test_labels_from_mask_ignores_background_and_void():
    mask = np.array([[0, 255, 20], [1, 1, 0]], np.uint8)
    assert labels_from_mask(mask).nonzero()[0].tolist() == [0, 19]
    assert labels_from_mask(np.zeros((2, 2), np.uint8)).sum() == 0


def test_xml_unknown_class_names_the_file(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("<annotation><object><name>unicorn</name></object></annotation>")
    with pytest.raises(ValueError, match=r"x\.xml.*unicorn"):
        labels_from_xml(path)
    path.write_text("<annotation><object>")
    with pytest.raises(ValueError, match=r"x\.xml"):
        labels_from_xml(path)


def test_missing_and_corrupt_image_name_the_file(tiny_voc):
    dataset = VOCImageLabels(tiny_voc, "train_aug")
    missing = dataset.image_path(2)
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=missing.name):
        dataset[2]
    corrupt = dataset.image_path(3)
    corrupt.write_bytes(corrupt.read_bytes()[:100])  # truncated JPEG
    with pytest.raises(ValueError, match=corrupt.name):
        dataset[3]
    garbage = dataset.image_path(4)
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=garbage.name):
        load_image(garbage)


def test_missing_mask_and_rgb_mask_name_the_file(tiny_voc):
    dataset = VOCImageLabels(tiny_voc, "train_aug")
    mask = tiny_voc / "SegmentationClassAug" / "2007_000001.png"
    mask.unlink()
    with pytest.raises(FileNotFoundError, match="2007_000001.png"):
        dataset[1]
    Image.new("RGB", (4, 4)).save(mask)
    with pytest.raises(ValueError, match="2007_000001.png"):
        load_label(mask)


def test_segmentation_dataset_and_label_size_check(tiny_voc, tmp_path):
    dataset = VOCSegmentation(tiny_voc, "val", label_dir="SegmentationClass")
    item = dataset[0]
    assert item["image"].shape == (3, 40, 48)
    assert item["label"].dtype == torch.int64 and set(item["label"].unique().tolist()) <= {
        0, 1, 2, 3, 255
    }
    # proxy labels from an absolute folder; a wrong-size map names its file
    folder = tmp_path / "proxy"
    save_label(folder / "2007_000006.png", np.zeros((5, 5), np.uint8))
    proxy = VOCSegmentation(tiny_voc, "val", label_dir=folder)
    with pytest.raises(ValueError, match="2007_000006.png"):
        proxy[0]
    with pytest.raises(FileNotFoundError, match="2007_000007.png"):
        proxy[1]
    assert "2007_000006" in LabelFolder(folder) and "2007_000007" not in LabelFolder(folder)


def test_saliency_folder_names_a_missing_map(tiny_voc):
    folder = SaliencyFolder(tiny_voc / "Saliency")
    sal = folder.load("2007_000000", size=(20, 24))
    assert sal.shape == (20, 24) and 0.0 <= float(sal.min()) and float(sal.max()) <= 1.0
    (tiny_voc / "Saliency" / "2007_000004.png").unlink()
    with pytest.raises(FileNotFoundError, match="2007_000004.png"):
        folder.load("2007_000004")


def test_same_key_same_augmentation(tiny_voc):
    transform = T.AttentionTrainTransform(scale_range=(40, 64), crop_size=32)
    dataset = VOCImageLabels(tiny_voc, "train_aug", transform=transform)
    a, b, c = dataset[(1, 7)], dataset[(1, 7)], dataset[(1, 8)]
    assert torch.equal(a["image"], b["image"])
    assert a["image"].shape == (3, 32, 32)
    assert not all(torch.equal(dataset[(1, s)]["image"], c["image"]) for s in range(9, 14))
