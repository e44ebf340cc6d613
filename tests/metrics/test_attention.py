from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seenet.metrics import THRESHOLDS, AttentionSweep, ConfusionMatrix, LabelScore

K = 6  # label ids 0..5: background and foreground class indices 0..4


# ----------------------------------------------------------------------------- references


def loop_counts(pred_fn, images, k=K, ignore=255):
    """Per-class TP, P (predicted), T (true) counted one pixel at a time."""
    tp, p, t = [0] * k, [0] * k, [0] * k
    for image in images:
        target = image["target"]
        for i in range(target.shape[0]):
            for j in range(target.shape[1]):
                truth = int(target[i, j])
                if truth == ignore:
                    continue
                pred = pred_fn(image, i, j)
                t[truth] += 1
                p[pred] += 1
                if pred == truth:
                    tp[truth] += 1
    return tp, p, t


def loop_scores(tp, p, t):
    """mIoU, precision, recall and SEAM's FP / FN shares from per-class counts, by the book."""
    ious, precisions, recalls, fps, fns = [], [], [], [], []
    for c in range(len(tp)):
        union = t[c] + p[c] - tp[c]
        if union == 0:
            continue
        ious.append(tp[c] / union)
        fps.append((p[c] - tp[c]) / union)
        fns.append((t[c] - tp[c]) / union)
        if p[c]:
            precisions.append(tp[c] / p[c])
        if t[c]:
            recalls.append(tp[c] / t[c])

    def mean(v):
        return sum(v) / len(v)

    return {
        "miou": mean(ious),
        "precision": mean(precisions),
        "recall": mean(recalls),
        "false_positive": mean(fps),
        "false_negative": mean(fns),
    }


def attention_pixel(threshold):
    """The label of one pixel: its largest map (first on ties) where at least ``threshold``."""

    def pred(image, i, j):
        best, best_c = -1.0, None
        for c, m in zip(image["classes"], image["maps"]):
            v = float(np.float32(m[i, j]))
            if v > best:
                best, best_c = v, c
        if best_c is None or not np.float32(best) >= np.float32(threshold):
            return 0
        return best_c + 1

    return pred


def random_images(seed, n=5, uint8=False):
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        h, w = rng.integers(2, 7, size=2)
        target = rng.integers(0, K, size=(h, w))
        target[rng.random((h, w)) < 0.15] = 255
        classes = rng.choice(K - 1, size=rng.integers(0, 4), replace=False)
        if uint8:
            maps = rng.integers(0, 256, size=(len(classes), h, w)).astype(np.uint8)
        else:
            # multiples of 0.05 hit the thresholds exactly; ties between maps happen too
            maps = (rng.integers(0, 21, size=(len(classes), h, w)) * 0.05).astype(np.float32)
        images.append({"classes": classes, "maps": maps, "target": target})
    return images


def as_unit(maps):
    """Maps in [0, 1] as the sweep compares them (uint8 as ``load_maps`` converts them)."""
    if maps.dtype == np.uint8:
        return np.multiply(maps, np.float32(1.0 / 255.0), dtype=np.float32)
    return maps


# ----------------------------------------------------------------------------- AttentionSweep


@pytest.mark.parametrize("uint8", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sweep_matches_pixel_loop_at_every_threshold(seed, uint8):
    images = random_images(seed, uint8=uint8)
    thresholds = (0.0, 0.05, 0.3, 0.5, 0.55, 0.95, 1.0)
    sweep = AttentionSweep(num_classes=K, thresholds=thresholds)
    for image in images:
        sweep.update(image["classes"], image["maps"], image["target"])
    unit = [{**im, "maps": as_unit(im["maps"])} for im in images]
    result = sweep.result()
    want_curve = {}
    for t in thresholds:
        want = loop_scores(*loop_counts(attention_pixel(t), unit))
        want_curve[f"{t:.2f}"] = want["miou"]
        assert sweep.matrix(t).miou() == pytest.approx(want["miou"], abs=1e-12)
    assert list(result["curve"]) == [f"{t:.2f}" for t in thresholds]
    for key, v in want_curve.items():
        assert result["curve"][key] == pytest.approx(v, abs=1e-12)
    best = max(thresholds, key=lambda t: (want_curve[f"{t:.2f}"], -t))
    assert result["threshold"] == best
    want = loop_scores(*loop_counts(attention_pixel(best), unit))
    for key, v in want.items():
        assert result[key] == pytest.approx(v, abs=1e-12), key
    assert result["miou"] + result["false_positive"] + result["false_negative"] == pytest.approx(1)


def test_sweep_coverage_and_context_share_by_hand():
    sweep = AttentionSweep(num_classes=4, thresholds=(0.5,))
    target = np.array([[0, 0, 1, 1], [3, 255, 0, 3]])
    maps = np.array(
        [
            [[0.25, 0.75, 1.0, 0.0], [0.5, 1.0, 0.0, 0.0]],  # class index 0 (label id 1)
            [[0.0, 0.0, 0.0, 0.25], [0.0, 1.0, 0.5, 0.75]],  # class index 2 (label id 3)
        ],
        np.float32,
    )
    sweep.update([0, 2], maps, target)
    r = sweep.result()
    # object pixels (ids 1, 3): (0,2) 1.0 marked, (0,3) 0.25 not, (1,0) 0.5 marked, (1,3) 0.75
    assert r["object_coverage"] == 3 / 4
    # background pixels: (0,0) 0.25 not, (0,1) 0.75 marked, (1,2) 0.5 marked
    assert r["background_coverage"] == 2 / 3
    # mass on evaluated pixels: 0.25+0.75+1+0.25 + 0.5+0.5+0.75 = 4.0; on background 0.25+0.75+0.5
    assert r["context_share"] == 1.5 / 4.0
    # predictions: [[0, 1, 1, 0], [1, -, 3, 3]]
    assert sweep.confusion[0].tolist() == [[1, 1, 0, 1], [1, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 1]]


def test_sweep_ties_go_to_lower_threshold_and_first_map():
    sweep = AttentionSweep(num_classes=3, thresholds=(0.4, 0.2, 0.6))
    # both maps equal on the object: the first given class wins
    sweep.update([1, 0], np.full((2, 1, 2), 0.7, np.float32), np.array([[2, 2]]))
    r = sweep.result()
    assert r["curve"] == {"0.40": 1.0, "0.20": 1.0, "0.60": 1.0}
    assert r["threshold"] == 0.2
    assert r["per_class"] == {"class 0": None, "class 1": None, "class 2": 1.0}


def test_sweep_no_classes_is_all_background():
    sweep = AttentionSweep(num_classes=3, thresholds=(0.5,))
    sweep.update([], np.zeros((0, 2, 2), np.float32), np.array([[0, 1], [255, 0]]))
    r = sweep.result()
    assert r["miou"] == pytest.approx((2 / 3 + 0) / 2)
    assert r["object_coverage"] == 0.0
    assert r["context_share"] is None  # no mass at all
    assert r["precision"] == pytest.approx(2 / 3)  # class 1 is never predicted: no precision
    assert r["recall"] == pytest.approx(0.5)


def test_sweep_merge_of_halves_equals_one_pass():
    images = random_images(7, n=6)
    one, a, b = (AttentionSweep(num_classes=K) for _ in range(3))
    for i, image in enumerate(images):
        args = (
            image["classes"],
            torch.from_numpy(image["maps"]),
            torch.from_numpy(image["target"]),
        )
        one.update(*args)
        (a if i % 2 else b).update(*args)
    a.merge(b)
    for name, t in one.counts().items():
        assert torch.equal(t, a.counts()[name]), name
    assert a.result() == one.result()


def test_all_reduce_without_process_group_is_a_no_op_and_with_one_process_keeps_counts(tmp_path):
    import torch.distributed as dist

    images = random_images(3, n=2)
    sweep, score = AttentionSweep(num_classes=K), LabelScore(num_classes=K)
    for image in images:
        sweep.update(image["classes"], image["maps"], image["target"])
        score.update(image["target"], image["target"])
    before = {k: v.clone() for k, v in sweep.counts().items()}
    sweep.all_reduce()
    assert all(torch.equal(before[k], v) for k, v in sweep.counts().items())
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        sweep.all_reduce()
        score.all_reduce(device="cpu")
    finally:
        dist.destroy_process_group()
    assert all(torch.equal(before[k], v) for k, v in sweep.counts().items())
    assert score.result()["miou"] == 1.0


def test_sweep_rejects_bad_inputs():
    sweep = AttentionSweep(num_classes=3, thresholds=(0.5,))
    target = np.zeros((2, 2), np.int64)
    maps = np.zeros((1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="maps must have shape"):
        sweep.update([0], np.zeros((1, 2, 3), np.float32), target)
    with pytest.raises(ValueError, match="maps must have shape"):
        sweep.update([0, 1], maps, target)
    with pytest.raises(ValueError, match=r"maps must be in \[0, 1\]"):
        sweep.update([0], maps + 1.5, target)
    with pytest.raises(ValueError, match="maps must be in"):
        sweep.update([0], maps * np.nan, target)
    with pytest.raises(ValueError, match="classes must be distinct"):
        sweep.update([2], maps, target)  # label id 3 does not exist
    with pytest.raises(ValueError, match="classes must be distinct"):
        sweep.update([0, 0], np.zeros((2, 2, 2), np.float32), target)
    with pytest.raises(ValueError, match="classes must be a 1-D array of ints"):
        sweep.update(np.array([0.0]), maps, target)
    with pytest.raises(ValueError, match="target must hold ids"):
        sweep.update([0], maps, target + 7)
    with pytest.raises(ValueError, match="target must hold integer"):
        sweep.update([0], maps, target.astype(np.float32))
    with pytest.raises(ValueError, match="at least one counted pixel"):
        sweep.result()
    with pytest.raises(ValueError, match="thresholds must be distinct"):
        AttentionSweep(thresholds=(0.5, 0.501))
    with pytest.raises(ValueError, match="threshold must be in"):
        AttentionSweep(thresholds=(1.5,))
    with pytest.raises(ValueError, match="thresholds must not be empty"):
        AttentionSweep(thresholds=())
    with pytest.raises(ValueError, match="ignore_index must not be a class id"):
        AttentionSweep(num_classes=3, ignore_index=1)
    with pytest.raises(ValueError, match="class_names must have 3 entries"):
        AttentionSweep(num_classes=3, class_names=["a"])
    with pytest.raises(ValueError, match="other must have the same"):
        sweep.merge(AttentionSweep(num_classes=3))


def test_thresholds_constant():
    assert THRESHOLDS == tuple(round(0.05 * i, 2) for i in range(1, 20))
    assert AttentionSweep().thresholds == THRESHOLDS
    assert [f"{t:.2f}" for t in THRESHOLDS][:3] == ["0.05", "0.10", "0.15"]


# ----------------------------------------------------------------------------- LabelScore


@pytest.mark.parametrize("seed", [0, 1])
def test_label_score_matches_pixel_loop(seed):
    rng = np.random.default_rng(seed)
    images = []
    score = LabelScore(num_classes=K)
    for _ in range(4):
        h, w = rng.integers(2, 7, size=2)
        target = rng.integers(0, K, size=(h, w))
        target[rng.random((h, w)) < 0.15] = 255
        label = rng.integers(0, K, size=(h, w))
        label[rng.random((h, w)) < 0.3] = 255
        images.append({"target": target, "label": label})
        score.update(label, torch.from_numpy(target))

    def as_background(image, i, j):
        v = int(image["label"][i, j])
        return 0 if v == 255 else v

    r = score.result()
    want = loop_scores(*loop_counts(as_background, images))
    for key, v in want.items():
        assert r[key] == pytest.approx(v, abs=1e-12), key
    labelled_only = [
        {"target": np.where(im["label"] == 255, 255, im["target"]), "label": im["label"]}
        for im in images
    ]
    assert r["miou_labelled"] == pytest.approx(
        loop_scores(*loop_counts(as_background, labelled_only))["miou"], abs=1e-12
    )
    evaluated = sum(int((im["target"] != 255).sum()) for im in images)
    labelled = sum(int(((im["target"] != 255) & (im["label"] != 255)).sum()) for im in images)
    assert r["labelled_fraction"] == labelled / evaluated


def test_label_score_merge_and_errors():
    a, b, one = LabelScore(3), LabelScore(3), LabelScore(3)
    x = (np.array([[0, 1, 255]]), np.array([[0, 1, 1]]))
    y = (np.array([[2, 2]]), np.array([[2, 0]]))
    a.update(*x)
    b.update(*y)
    one.update(*x)
    one.update(*y)
    assert a.merge(b).result() == one.result()
    with pytest.raises(ValueError, match="label must hold ids"):
        a.update(np.array([[3]]), np.array([[0]]))
    with pytest.raises(ValueError, match="same shape"):
        a.update(np.array([[0, 0]]), np.array([[0]]))
    with pytest.raises(ValueError, match="at least one counted pixel"):
        LabelScore(3).result()
    nothing = LabelScore(3)
    nothing.update(np.array([[255]]), np.array([[1]]))
    assert nothing.result()["miou_labelled"] is None
    assert nothing.result()["labelled_fraction"] == 0.0


# ----------------------------------------------------------------------------- the demo's numbers


@pytest.fixture
def synthetic_voc(tmp_path):
    from seenet.data.synthetic import make_synthetic_voc

    root = tmp_path / "voc"
    make_synthetic_voc(root, num_train=6, num_val=2, size=32)
    return root


def test_matrix_is_a_confusion_matrix():
    sweep = AttentionSweep(num_classes=3, thresholds=(0.5,))
    sweep.update([0], np.array([[[0.9, 0.1]]], np.float32), np.array([[1, 1]]))
    cm = sweep.matrix(0.5)
    assert isinstance(cm, ConfusionMatrix)
    assert cm.matrix.tolist() == [[0, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert math.isclose(cm.miou(), 0.25)
    with pytest.raises(ValueError, match="threshold must be one of"):
        sweep.matrix(0.3)
