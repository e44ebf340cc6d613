from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import seenet
from seenet.metrics import ConfusionMatrix


def loop_iou(preds, targets, k, ignore=255):
    """Per-class IoU by counting pixels one at a time; None where the union is empty."""
    inter = [0] * k
    union = [0] * k
    for pred, target in zip(preds, targets):
        for p, t in zip(np.asarray(pred).ravel().tolist(), np.asarray(target).ravel().tolist()):
            if t == ignore:
                continue
            for c in range(k):
                if p == c and t == c:
                    inter[c] += 1
                if p == c or t == c:
                    union[c] += 1
    return [inter[c] / union[c] if union[c] else None for c in range(k)]


@given(seed=st.integers(0, 10_000), k=st.integers(1, 7), batches=st.integers(1, 3))
def test_iou_matches_literal_loop(seed, k, batches):
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    cm = ConfusionMatrix(num_classes=k)
    for _ in range(batches):
        shape = tuple(rng.integers(1, 6, size=2))
        target = rng.integers(0, k, size=shape)
        target[rng.random(shape) < 0.2] = 255
        pred = rng.integers(0, k, size=shape)
        pred[rng.random(shape) < 0.1] = 255  # predictions on ignored pixels do not count ...
        pred[target != 255] = np.minimum(pred[target != 255], k - 1)  # ... valid ones are ids
        cm.update(torch.from_numpy(pred), torch.from_numpy(target))
        preds.append(pred)
        targets.append(target)
    want = loop_iou(preds, targets, k)
    got = cm.iou().tolist()
    for g, w in zip(got, want):
        assert (math.isnan(g) and w is None) or g == pytest.approx(w)
    valid = [w for w in want if w is not None]
    if valid:
        assert cm.miou() == pytest.approx(sum(valid) / len(valid))
    else:
        assert math.isnan(cm.miou())


def test_known_values_and_voc_mean():
    cm = ConfusionMatrix(num_classes=4)
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 2, 3, 0]])
    cm.update(pred, target)
    # class 0: inter 1, union {gt 2} + {pred 2} - 1 = 3; class 1: 2 / 3; class 2: 1 / 2
    want = torch.tensor([1 / 3, 2 / 3, 1 / 2], dtype=torch.float64)
    torch.testing.assert_close(cm.iou()[:3], want)
    assert math.isnan(cm.iou()[3])  # class 3: only predicted on ignored pixels -> empty union
    assert cm.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert cm.accuracy() == pytest.approx(4 / 6)
    assert cm.matrix.sum() == 6 and cm.matrix[0].tolist() == [1, 1, 0, 0]  # rows: ground truth


def test_merge_equals_one_matrix_and_reset():
    rng = np.random.default_rng(3)
    a, b, both = ConfusionMatrix(5), ConfusionMatrix(5), ConfusionMatrix(5)
    for i in range(6):
        pred = rng.integers(0, 5, size=(7, 9))
        target = rng.integers(0, 5, size=(7, 9))
        (a if i % 2 else b).update(pred, target)
        both.update(pred, target)
    assert torch.equal(a.merge(b).matrix, both.matrix)
    both.reset()
    assert both.matrix.sum() == 0 and math.isnan(both.miou())
    with pytest.raises(ValueError, match="num_classes"):
        a.merge(ConfusionMatrix(4))


def test_update_errors():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="same shape"):
        cm.update(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"pred ids must be in \[0, 3\)"):
        cm.update(torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(ValueError, match="target ids"):
        cm.update(torch.tensor([0]), torch.tensor([7]))
    with pytest.raises(ValueError, match="integer"):
        cm.update(torch.tensor([0.5]), torch.tensor([0]))
    with pytest.raises(ValueError, match="ignore_index"):
        ConfusionMatrix(3, ignore_index=1)
    with pytest.raises(ValueError, match="class_names"):
        ConfusionMatrix(3, class_names=["a"])
    cm.update(torch.tensor([2]), torch.tensor([255]))  # all ignored: nothing counted
    assert cm.matrix.sum() == 0


def test_table_uses_voc_names():
    cm = ConfusionMatrix()
    cm.update(torch.tensor([0, 15, 15, 7]), torch.tensor([0, 15, 0, 7]))
    table = cm.table()
    lines = table.splitlines()
    assert len(lines) == 1 + 21 + 2
    assert lines[16].split() == ["person", "50.0"]
    assert lines[8].split() == ["car", "100.0"]
    assert lines[2].split() == ["aeroplane", "-"]
    assert lines[-2].split() == ["mIoU", f"{100 * (0.5 + 0.5 + 1) / 3:.1f}"]
    assert str(cm) == table
    assert "class 2" in ConfusionMatrix(3).table()


def test_submodule_export():
    assert seenet.metrics.ConfusionMatrix is ConfusionMatrix
