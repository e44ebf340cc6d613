from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from seenet._classes import VOC_CLASSES, voc_palette
from seenet.data.synthetic import (
    CONTEXTS,
    SYNTHETIC_CLASSES,
    make_synthetic_voc,
    read_synthetic_info,
    render_sample,
)

IDS = {VOC_CLASSES.index(c) for c in SYNTHETIC_CLASSES}


def _samples(n, size=64, seed=0, **kwargs):
    return [render_sample(np.random.default_rng([seed, 0, i]), size, **kwargs) for i in range(n)]


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- the VOC tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    info = make_synthetic_voc(root, num_train=6, num_val=3, size=48, seed=1)
    return root, info


def test_layout_matches_voc(tree):
    root, info = tree
    lists = root / "ImageSets" / "Segmentation"
    train = lists.joinpath("train.txt").read_text().split()
    train_aug = lists.joinpath("train_aug.txt").read_text().split()
    val = lists.joinpath("val.txt").read_text().split()
    trainval = lists.joinpath("trainval.txt").read_text().split()
    assert len(train_aug) == 6 and len(val) == 3 and len(train) == 3
    assert set(train) <= set(train_aug) and not set(train_aug) & set(val)
    assert trainval == train + val
    for name in train_aug + val:
        image = Image.open(root / "JPEGImages" / f"{name}.jpg")
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (48, 48)
        label = Image.open(root / "SegmentationClass" / f"{name}.png")
        assert label.mode == "P" and label.size == (48, 48)
        palette = np.array(label.getpalette()[: 256 * 3], np.uint8).reshape(256, 3)
        np.testing.assert_array_equal(palette, voc_palette())
        mask = np.asarray(label)
        assert set(np.unique(mask).tolist()) <= {0} | IDS
        assert (mask > 0).any() and (mask == 0).any()
        aug = np.asarray(Image.open(root / "SegmentationClassAug" / f"{name}.png"))
        np.testing.assert_array_equal(aug, mask)
    assert read_synthetic_info(root) == json.loads((root / "synthetic.json").read_text()) == info
    assert info["class_ids"] == [VOC_CLASSES.index(c) for c in SYNTHETIC_CLASSES]


def test_files_match_the_rendered_samples(tree):
    root, _ = tree
    sample = render_sample(np.random.default_rng([1, 1, 2]), 48)  # seed 1, val split, image 2
    mask = np.asarray(Image.open(root / "SegmentationClass" / "syn_val_00002.png"))
    np.testing.assert_array_equal(mask, sample.mask)
    image = np.asarray(Image.open(root / "JPEGImages" / "syn_val_00002.jpg")).astype(float)
    assert np.abs(image - sample.image).mean() < 8.0  # JPEG quality 95 on noisy textures


def test_deterministic_for_a_seed(tmp_path):
    a = make_synthetic_voc(tmp_path / "a", num_train=3, num_val=2, size=40, seed=5)
    b = make_synthetic_voc(tmp_path / "b", num_train=3, num_val=2, size=40, seed=5)
    assert a == b and _digest(tmp_path / "a") == _digest(tmp_path / "b")
    make_synthetic_voc(tmp_path / "c", num_train=3, num_val=2, size=40, seed=6)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    # image i depends on (seed, split, i) only: a larger set starts with the same images
    make_synthetic_voc(tmp_path / "d", num_train=5, num_val=2, size=40, seed=5)
    for name in ("JPEGImages/syn_train_00002.jpg", "SegmentationClass/syn_val_00001.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "d" / name).read_bytes()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_train"):
        make_synthetic_voc(tmp_path, num_train=0)
    with pytest.raises(ValueError, match="size"):
        make_synthetic_voc(tmp_path, num_train=2, num_val=1, size=16)
    with pytest.raises(ValueError, match="classes"):
        render_sample(np.random.default_rng(0), classes=("cat",))
    with pytest.raises(ValueError, match="context_prob"):
        render_sample(np.random.default_rng(0), context_prob=1.5)
    with pytest.raises(ValueError, match="max_objects"):
        render_sample(np.random.default_rng(0), max_objects=0)
    assert not any(tmp_path.iterdir())  # nothing written for bad arguments
    with pytest.raises(FileNotFoundError, match="synthetic.json"):
        read_synthetic_info(tmp_path)


# ----------------------------------------------------------------------------- the samples


def test_masks_are_exact_and_objects_disjoint():
    for s in _samples(40):
        union = np.zeros_like(s.mask, dtype=bool)
        for obj in s.objects:
            region = obj.body | obj.part
            assert not (obj.body & obj.part).any()
            assert not (region & union).any()  # occluded pixels belong to one object only
            assert (s.mask[region] == obj.voc_id).all()
            union |= region
        assert ((s.mask > 0) == union).all()
        assert 1 <= len(s.objects) <= 3
        assert set(s.labels) == {VOC_CLASSES[i] for i in np.unique(s.mask) if i}


def test_restricting_classes_and_objects():
    for s in _samples(20, classes=("boat",), max_objects=1):
        assert [o.name for o in s.objects] == ["boat"] and s.labels == ("boat",)


def _own_context(sample):
    return sample.context == CONTEXTS[SYNTHETIC_CLASSES.index(sample.objects[0].name)]


def test_each_class_comes_with_its_own_context():
    # P(background = own context of the first object) = p + (1 - p) / 4
    samples = _samples(400, size=40, context_prob=0.8)
    own = np.mean([_own_context(s) for s in samples])
    assert abs(own - 0.85) < 0.06
    # given a context, its own class is by far the most frequent label
    for context, name in zip(CONTEXTS, SYNTHETIC_CLASSES):
        with_context = [s for s in samples if s.context == context]
        rates = {c: np.mean([c in s.labels for s in with_context]) for c in SYNTHETIC_CLASSES}
        others = max(v for c, v in rates.items() if c != name)
        assert rates[name] > 0.75 and rates[name] - others > 0.35, (context, rates)
    # with context_prob=0 the background carries no class information
    samples = _samples(400, size=40, context_prob=0.0)
    own = np.mean([_own_context(s) for s in samples])
    assert abs(own - 0.25) < 0.07


def test_context_prob_changes_the_backgrounds_only():
    changed = 0
    for i in range(30):
        a = render_sample(np.random.default_rng([5, i]), size=48, context_prob=1.0)
        b = render_sample(np.random.default_rng([5, i]), size=48, context_prob=0.0)
        assert np.array_equal(a.mask, b.mask)
        assert [o.name for o in a.objects] == [o.name for o in b.objects]
        objects = a.mask > 0
        assert np.array_equal(a.image[objects], b.image[objects])
        changed += a.context != b.context
    assert changed > 10  # p = 1 and p = 0 do pick different backgrounds


def _nearest_centroid_accuracy(features, labels):
    """Leave-one-out nearest class mean accuracy."""
    features, labels = np.asarray(features), np.asarray(labels)
    correct = 0
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        means = np.stack([features[keep & (labels == k)].mean(0) for k in range(4)])
        correct += int(np.argmin(((means - features[i]) ** 2).sum(1)) == labels[i])
    return correct / len(labels)


def test_large_shared_body_and_small_discriminative_part():
    body_feats, part_feats, classes, part_share = [], [], [], []
    for s in _samples(160, size=96, max_objects=1):
        obj = s.objects[0]
        img = s.image.astype(np.float64)
        if obj.part.sum() < 4:
            continue
        body_feats.append(np.concatenate([img[obj.body].mean(0), img[obj.body].std(0)]))
        part_feats.append(np.concatenate([img[obj.part].mean(0), img[obj.part].std(0)]))
        classes.append(SYNTHETIC_CLASSES.index(obj.name))
        part_share.append(obj.part.sum() / (obj.body | obj.part).sum())
    # the part is a small fraction of the object, the body the large rest
    assert np.median(part_share) < 0.2 and max(part_share) < 0.35
    # the part's look alone identifies the class; the body's look (colour, texture) does not
    assert _nearest_centroid_accuracy(part_feats, classes) > 0.97
    assert _nearest_centroid_accuracy(body_feats, classes) < 0.45  # chance is 0.25
    assert sorted(set(classes)) == [0, 1, 2, 3]
