from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import seenet
from seenet.data.maps import dense_maps, load_maps, save_maps
from seenet.proxy import EPS, proxy_ground_truth, proxy_ground_truth_from_maps


def loop_algorithm1(attention, saliency, labels, w=1.0, sal_thr=None, conf_thr=None, ignore=255):
    """Algorithm 1 of the paper, literally: one pixel at a time, one labelled class at a time."""
    k, h, wd = attention.shape
    out = np.zeros((h, wd), dtype=np.int64)
    for i in range(h):
        for j in range(wd):
            d = float(saliency[i, j])
            if sal_thr is not None and d < sal_thr:
                d = 0.0
            best_label, best_q = 0, 1.0 - d  # Q(0, i) = 1 - D(i)
            class_scores = []
            for c in range(k):
                if not labels[c]:
                    continue
                a = float(attention[c, i, j])
                q = (w + 1) / (w / (a + EPS) + 1 / (d + EPS))  # harm(D(i), A_c(i)), Eq. 3
                class_scores.append(q)
                if q > best_q:  # strict: ties stay with the lower id
                    best_label, best_q = c + 1, q
            if conf_thr is not None and len(class_scores) >= 2:
                top2 = sorted(class_scores)[-2:]
                if top2[0] > conf_thr and top2[1] > conf_thr:
                    best_label = ignore
            out[i, j] = best_label
    return out


def random_case(seed, k=5, h=6, w=7, n=None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shape = (k, h, w) if n is None else (n, k, h, w)
    attention = torch.rand(shape, generator=g, dtype=dtype)
    saliency = torch.rand(shape[:-3] + (h, w), generator=g, dtype=dtype)
    labels = (torch.rand(shape[:-2], generator=g) < 0.5).long()
    return attention, saliency, labels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("w", [1.0, 0.3, 4.0])
def test_matches_literal_loop(seed, w):
    attention, saliency, labels = random_case(seed)
    labels[seed % 5] = 1  # at least one labelled class
    got = proxy_ground_truth(attention, saliency, labels, w=w)
    want = loop_algorithm1(attention.numpy(), saliency.numpy(), labels.numpy(), w=w)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), want)
    # the case is not trivial: background and at least one class appear
    assert (want == 0).any() and (want > 0).any()


def test_matches_loop_in_float32():
    attention, saliency, labels = random_case(11, dtype=torch.float32)
    labels[:] = 1
    got = proxy_ground_truth(attention, saliency, labels)
    want = loop_algorithm1(attention.numpy(), saliency.numpy(), labels.numpy())
    # float32 arithmetic may flip near-ties only
    assert (got.numpy() != want).mean() < 0.03


@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 6),
    sal_thr=st.one_of(st.none(), st.floats(0, 1)),
    conf_thr=st.one_of(st.none(), st.floats(0, 1)),
    w=st.floats(0.1, 5.0),
)
def test_matches_loop_property(seed, k, sal_thr, conf_thr, w):
    attention, saliency, labels = random_case(seed, k=k, h=4, w=5)
    # quantised values make exact ties common
    attention = (attention * 4).round() / 4
    saliency = (saliency * 4).round() / 4
    got = proxy_ground_truth(
        attention, saliency, labels, w=w, saliency_threshold=sal_thr, conflict_threshold=conf_thr
    )
    want = loop_algorithm1(
        attention.numpy(), saliency.numpy(), labels.numpy(), w, sal_thr, conf_thr
    )
    np.testing.assert_array_equal(got.numpy(), want)


def test_ties_go_to_lower_id():
    attention = torch.full((4, 2, 3), 0.6, dtype=torch.float64)
    saliency = torch.full((2, 3), 0.9, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 1])
    got = proxy_ground_truth(attention, saliency, labels)
    assert (got == 2).all()  # class index 1 is the lowest labelled; id 2
    # exact tie between background and a class: background (id 0) wins
    attention = torch.zeros(1, 1, 1)
    saliency = torch.zeros(1, 1)  # Q0 = 1; Q = 2 / (1/eps + 1/eps) = eps
    assert proxy_ground_truth(attention, saliency, torch.tensor([1])).item() == 0


def test_unlabelled_classes_never_chosen():
    attention, saliency, _ = random_case(3, k=6)
    attention[0] = 1.0  # class 0 would win everywhere, but is not labelled
    saliency[:] = 0.9
    labels = torch.tensor([0, 0, 1, 0, 0, 0])
    got = proxy_ground_truth(attention, saliency, labels)
    assert set(got.unique().tolist()) <= {0, 3}
    # unlabelled maps are not read: NaN or out-of-range values there do not matter
    attention[1] = float("nan")
    attention[4] = 7.0
    torch.testing.assert_close(proxy_ground_truth(attention, saliency, labels), got)


def test_no_labels_all_background():
    attention, saliency, _ = random_case(5)
    attention[:] = 1.0
    saliency[:] = 1.0
    got = proxy_ground_truth(attention, saliency, torch.zeros(5, dtype=torch.long))
    assert got.shape == (6, 7) and (got == 0).all()
    saliency[0, 0] = float("nan")  # still checked
    with pytest.raises(ValueError, match="saliency must not contain NaN"):
        proxy_ground_truth(attention, saliency, torch.zeros(5, dtype=torch.long))


def test_batched_equals_per_image():
    attention, saliency, labels = random_case(7, n=4)
    labels[2] = 0  # one image without labels
    labels[0] = 1
    got = proxy_ground_truth(attention, saliency, labels)
    assert got.shape == (4, 6, 7)
    for i in range(4):
        torch.testing.assert_close(got[i], proxy_ground_truth(attention[i], saliency[i], labels[i]))
    assert (got[2] == 0).all()


def test_label_dtypes_and_numpy_inputs():
    attention, saliency, labels = random_case(9)
    want = proxy_ground_truth(attention, saliency, labels)
    torch.testing.assert_close(proxy_ground_truth(attention, saliency, labels.bool()), want)
    torch.testing.assert_close(proxy_ground_truth(attention, saliency, labels.float()), want)
    got = proxy_ground_truth(attention.numpy(), saliency.numpy(), labels.numpy())
    torch.testing.assert_close(got, want)


def test_saliency_threshold_option():
    attention = torch.full((1, 1, 3), 0.9)
    saliency = torch.tensor([[0.2, 0.45, 0.8]])
    labels = torch.tensor([1])
    # the paper's formula: Q0 = 0.8 vs harm(0.9, 0.2) = 0.327 -> background at 0.2
    assert proxy_ground_truth(attention, saliency, labels).tolist() == [[0, 1, 1]]
    got = proxy_ground_truth(attention, saliency, labels, saliency_threshold=0.5)
    assert got.tolist() == [[0, 0, 1]]  # 0.45 is below the hard threshold -> background


def test_conflict_threshold_option():
    attention = torch.tensor([[[0.9, 0.9, 0.2]], [[0.85, 0.3, 0.1]]])
    saliency = torch.tensor([[0.95, 0.95, 0.1]])
    labels = torch.tensor([1, 1])
    assert proxy_ground_truth(attention, saliency, labels).tolist() == [[1, 1, 0]]
    got = proxy_ground_truth(attention, saliency, labels, conflict_threshold=0.8)
    assert got.tolist() == [[255, 1, 0]]
    got = proxy_ground_truth(attention, saliency, labels, conflict_threshold=0.8, ignore_index=9)
    assert got.tolist() == [[9, 1, 0]]
    # one labelled class: never a conflict
    got = proxy_ground_truth(attention, saliency, torch.tensor([1, 0]), conflict_threshold=0.1)
    assert (got != 255).all()


def test_harmonic_mean_value():
    # one pixel, one class: Q_c is the weighted harmonic mean of A and D
    a, d, w = 0.6, 0.8, 2.0
    harm = (w + 1) / (w / a + 1 / d)
    assert harm > 1 - d  # class wins
    got = proxy_ground_truth(torch.tensor([[[a]]]), torch.tensor([[d]]), torch.tensor([1]), w=w)
    assert got.item() == 1
    assert math.isclose(harm, 3 / (2 / 0.6 + 1 / 0.8))
    got = proxy_ground_truth(torch.tensor([[[a]]]), torch.tensor([[0.3]]), torch.tensor([1]), w=w)
    assert got.item() == 0  # harm(0.6, 0.3) = 0.45 < 1 - 0.3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(attention=torch.rand(2, 4, 4), saliency=torch.rand(4, 5)), "same batch and spatial"),
        (dict(saliency=torch.rand(1, 4, 4)), "saliency must have shape"),
        (dict(labels=torch.ones(3)), "labels must have one entry"),
        (dict(labels=torch.ones(1, 2)), "labels must have shape"),
        (dict(labels=torch.tensor([0, 2])), "multi-hot"),
        (dict(attention=torch.rand(4, 4)), "attention must have shape"),
        (dict(attention=torch.full((2, 4, 4), 1.5)), r"attention must be in \[0, 1\]"),
        (dict(attention=torch.full((2, 4, 4), -0.1)), r"attention must be in \[0, 1\]"),
        (dict(attention=torch.full((2, 4, 4), float("nan"))), "attention must not contain NaN"),
        (dict(saliency=torch.full((4, 4), 2.0)), r"saliency must be in \[0, 1\]"),
        (dict(saliency=torch.full((4, 4), float("nan"))), "saliency must not contain NaN"),
        (dict(saliency=torch.ones(4, 4, dtype=torch.long)), "floating point"),
        (dict(w=0.0), "w must be"),
        (dict(w=-1.0), "w must be"),
        (dict(saliency_threshold=1.5), "saliency_threshold"),
        (dict(conflict_threshold=-0.1), "conflict_threshold"),
        (dict(ignore_index=-1), "ignore_index"),
        (dict(attention=[[0.5]]), "attention must be a torch.Tensor"),
    ],
)
def test_value_errors(kwargs, match):
    args = dict(attention=torch.rand(2, 4, 4), saliency=torch.rand(4, 4), labels=torch.ones(2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        proxy_ground_truth(**args)


def test_batched_shape_errors():
    with pytest.raises(ValueError, match="same batch"):
        proxy_ground_truth(torch.rand(2, 3, 4, 4), torch.rand(3, 4, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match="labels must have one entry"):
        proxy_ground_truth(torch.rand(2, 3, 4, 4), torch.rand(2, 4, 4), torch.ones(3, 3))


def test_top_level_export():
    assert seenet.proxy_ground_truth is proxy_ground_truth


# ------------------------------------------------------------------ stored maps


def test_save_load_round_trip(tmp_path):
    maps = torch.rand(3, 5, 6)
    path = tmp_path / "sub" / "img.npz"
    save_maps(path, torch.tensor([4, 0, 17]), maps)
    with np.load(path) as raw:  # the documented file format
        assert raw["classes"].dtype == np.int64 and raw["classes"].tolist() == [4, 0, 17]
        assert raw["maps"].dtype == np.uint8
        np.testing.assert_array_equal(raw["maps"], np.rint(maps.numpy() * 255).astype(np.uint8))
    classes, loaded = load_maps(path)
    assert classes.tolist() == [4, 0, 17] and loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, maps.numpy(), atol=0.5 / 255 + 1e-6)
    assert not list(tmp_path.glob("sub/.*tmp"))  # no temporary file left behind
    # uint8 input is stored as is
    save_maps(path, [1], np.full((1, 2, 2), 7, np.uint8))
    assert (load_maps(path)[1] * 255).round().tolist() == [[[7, 7], [7, 7]]]


def test_save_maps_errors(tmp_path):
    p = tmp_path / "x.npz"
    with pytest.raises(ValueError, match="L = len"):
        save_maps(p, [1, 2], torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="distinct"):
        save_maps(p, [1, 1], torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match=r"maps must be in \[0, 1\]"):
        save_maps(p, [1], torch.full((1, 4, 4), 1.2))
    with pytest.raises(ValueError, match="NaN"):
        save_maps(p, [1], torch.full((1, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="ints"):
        save_maps(p, [1.5], torch.rand(1, 4, 4))
    assert not p.exists()


def test_load_maps_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_maps(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(ValueError, match="bad.npz.*'classes' and 'maps'"):
        load_maps(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_maps(junk)


def test_dense_maps_feeds_proxy_ground_truth(tmp_path):
    maps = torch.rand(2, 5, 6)
    save_maps(tmp_path / "a.npz", [3, 9], maps)
    attention, labels = dense_maps(*load_maps(tmp_path / "a.npz"), num_classes=20)
    assert attention.shape == (20, 5, 6) and labels.sum() == 2
    assert labels[3] == 1 and labels[9] == 1 and attention[0].abs().sum() == 0
    saliency = torch.rand(5, 6)
    got = proxy_ground_truth(attention, saliency, labels)
    assert set(got.unique().tolist()) <= {0, 4, 10}
    with pytest.raises(ValueError, match="classes must be in"):
        dense_maps([25], np.zeros((1, 2, 2), np.float32), num_classes=20)


@given(
    seed=st.integers(0, 10_000),
    num=st.integers(0, 4),
    conf_thr=st.one_of(st.none(), st.floats(0, 1)),
    sal_thr=st.one_of(st.none(), st.floats(0, 1)),
)
def test_from_maps_equals_dense(seed, num, conf_thr, sal_thr):
    rng = np.random.default_rng(seed)
    classes = rng.permutation(20)[:num]  # any order
    maps = (torch.from_numpy(rng.random((num, 5, 6))) * 4).round() / 4
    saliency = (torch.from_numpy(rng.random((5, 6))) * 4).round() / 4
    got = proxy_ground_truth_from_maps(
        classes, maps, saliency, saliency_threshold=sal_thr, conflict_threshold=conf_thr
    )
    attention, labels = dense_maps(classes, maps, 20)
    want = proxy_ground_truth(
        attention.double(), saliency, labels, saliency_threshold=sal_thr,
        conflict_threshold=conf_thr,
    )  # fmt: skip
    torch.testing.assert_close(got, want)


def test_from_maps_errors():
    maps, sal = torch.rand(2, 3, 4), torch.rand(3, 4)
    with pytest.raises(ValueError, match="L = len"):
        proxy_ground_truth_from_maps([1], maps, sal)
    with pytest.raises(ValueError, match="distinct"):
        proxy_ground_truth_from_maps([1, 1], maps, sal)
    with pytest.raises(ValueError, match="saliency must have shape"):
        proxy_ground_truth_from_maps([1, 2], maps, torch.rand(4, 3))
    with pytest.raises(ValueError, match=r"attention must be in \[0, 1\]"):
        proxy_ground_truth_from_maps([1, 2], maps + 1, sal)
    with pytest.raises(ValueError, match="NaN"):
        proxy_ground_truth_from_maps([], torch.zeros(0, 3, 4), torch.full((3, 4), float("nan")))


@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), conf_thr=st.sampled_from([None, 0.3]))
def test_batched_equals_per_image_property(seed, n, conf_thr):
    attention, saliency, labels = random_case(seed, k=4, h=3, w=4, n=n)
    got = proxy_ground_truth(attention, saliency, labels, conflict_threshold=conf_thr)
    for i in range(n):
        one = proxy_ground_truth(attention[i], saliency[i], labels[i], conflict_threshold=conf_thr)
        torch.testing.assert_close(got[i], one)
