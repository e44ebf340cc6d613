"""The synthetic salient-object data set."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from seenet.data import synthetic, synthetic_sod
from seenet.data.sod import SalientObjectDataset
from seenet.data.synthetic_sod import (
    SOD_BACKGROUNDS,
    SOD_SHAPES,
    make_synthetic_sod,
    render_sod_sample,
)


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("sod")
    info = make_synthetic_sod(root, num_images=5, size=40, seed=2)
    return root, info


def test_layout_and_binary_masks(tree):
    root, info = tree
    ids = [f"sod_{i:05d}" for i in range(5)]
    assert sorted(p.stem for p in (root / "images").iterdir()) == ids
    for name in ids:
        image = Image.open(root / "images" / f"{name}.jpg")
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (40, 40)
        mask = Image.open(root / "masks" / f"{name}.png")
        assert mask.format == "PNG" and mask.mode == "L" and mask.size == (40, 40)
        values = set(np.unique(np.asarray(mask)).tolist())
        assert values == {0, 255}  # an object and some background in every image
    assert json.loads((root / "sod.json").read_text()) == info
    assert info["num_images"] == 5 and info["size"] == 40 and info["seed"] == 2


def test_the_reader_reads_it(tree):
    root, info = tree
    data = SalientObjectDataset(root, info["image_dir"], info["mask_dir"])
    assert len(data) == 5
    item = data[4]
    assert item["image"].shape == (3, 40, 40) and item["mask"].shape == (40, 40)
    written = np.asarray(Image.open(root / "masks" / "sod_00004.png")) > 0
    np.testing.assert_array_equal(item["mask"].numpy() == 1, written)


def test_deterministic_per_seed_and_index(tmp_path, tree):
    root, _ = tree
    again = tmp_path / "again"
    make_synthetic_sod(again, num_images=5, size=40, seed=2)
    assert _digest(again) == _digest(root)
    # image i depends on (seed, i) only, not on how many images are written
    fewer = tmp_path / "fewer"
    make_synthetic_sod(fewer, num_images=2, size=40, seed=2)
    for name in ("sod_00000", "sod_00001"):
        assert (fewer / "masks" / f"{name}.png").read_bytes() == (
            root / "masks" / f"{name}.png"
        ).read_bytes()
        assert (fewer / "images" / f"{name}.jpg").read_bytes() == (
            root / "images" / f"{name}.jpg"
        ).read_bytes()
    other = tmp_path / "other"
    make_synthetic_sod(other, num_images=2, size=40, seed=3)
    assert (other / "masks" / "sod_00000.png").read_bytes() != (
        root / "masks" / "sod_00000.png"
    ).read_bytes()


def test_samples_vary_and_objects_stand_out():
    samples = [render_sod_sample(np.random.default_rng([0, i]), 64) for i in range(40)]
    shapes = {s for sample in samples for s in sample.shapes}
    assert shapes == set(SOD_SHAPES)
    assert {s.background for s in samples} == set(SOD_BACKGROUNDS)
    assert {len(s.shapes) for s in samples} == {1, 2, 3}
    # most objects carry attached parts (limbs, smaller shapes), one to three of them
    parts = [k for s in samples for k in s.parts]
    assert len(parts) == sum(len(s.shapes) for s in samples)
    assert set(parts) == {0, 1, 2, 3} and 0.4 < np.mean(np.array(parts) > 0) < 0.8
    fractions = [s.mask.mean() for s in samples]
    assert 0.02 < min(fractions) and max(fractions) < 0.6
    # objects contrast with the background: their mean colours are far apart
    gaps = [
        np.linalg.norm(s.image[s.mask].mean(0) - s.image[~s.mask].mean(0)) for s in samples
    ]
    assert np.median(gaps) > 40


def test_shares_nothing_with_the_voc_style_data():
    # object colours keep away from the VOC generator's part colours; no background is a context
    parts = np.array(list(synthetic._PART_COLOURS.values()), np.float32)
    rng = np.random.default_rng(0)
    for _ in range(200):
        under = rng.uniform(0, 255, 3).astype(np.float32)
        colour = synthetic_sod._salient_colour(rng, under)
        assert np.linalg.norm(parts - colour, axis=1).min() >= 60
    assert not set(SOD_BACKGROUNDS) & set(synthetic.CONTEXTS)
    # nor are the part colours background colours (they would mark "not salient")
    shares = []
    for i in range(40):
        sample = render_sod_sample(np.random.default_rng([1, i]), 64)
        bg = sample.image[~sample.mask].astype(np.float32)
        shares.append((np.linalg.norm(bg[:, None] - parts[None], axis=-1).min(1) < 40).mean())
    assert np.mean(shares) < 0.03


def test_attached_parts():
    rng = np.random.default_rng(3)
    regions = synthetic_sod._attached_parts(rng, 64, 32.0, 32.0, 12.0)
    assert 1 <= len(regions) <= 3 and all(r.any() for r in regions)
    limb = synthetic_sod._limb(64, (10.0, 10.0), (50.0, 10.0), 3)
    assert limb[9:12, 12:48].all() and not limb[20:].any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_images=0), "num_images must be a positive integer"),
        (dict(size=16), "size must be an integer of at least 32"),
        (dict(seed=-1), "seed must be a non-negative integer"),
    ],
)
def test_argument_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_sod(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())
