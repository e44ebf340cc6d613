from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from seenet._classes import voc_palette
from seenet.viz import jet, overlay_attention, overlay_labels, save_png, tile


def test_jet_runs_blue_to_red():
    colours = jet(np.linspace(0, 1, 5))
    assert colours[0].tolist() == [0, 0, 128] and colours[-1].tolist() == [128, 0, 0]
    assert colours[2].tolist() == [128, 255, 128]  # green in the middle
    assert np.all(jet(np.array([-1.0, 2.0])) == jet(np.array([0.0, 1.0])))


def test_overlay_attention_is_an_alpha_blend():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 7, 3)).astype(np.uint8)
    att = rng.random((6, 7))
    out = overlay_attention(image, att, alpha=0.25)
    expected = np.rint(0.75 * image + 0.25 * jet(att)).astype(np.uint8)
    assert np.abs(out.astype(int) - expected).max() <= 1
    with pytest.raises(ValueError, match="attention"):
        overlay_attention(image, att[:3])
    with pytest.raises(ValueError, match="image"):
        overlay_attention(image.astype(np.float32), att)


def test_overlay_labels_colours_foreground_only():
    image = np.full((2, 3, 3), 100, np.uint8)
    labels = np.array([[0, 15, 255], [1, 0, 0]])
    out = overlay_labels(image, labels, alpha=0.5)
    assert out[0, 0].tolist() == [100, 100, 100]  # background untouched
    person = voc_palette()[15].astype(float)
    assert out[0, 1].tolist() == np.rint(0.5 * 100 + 0.5 * person).astype(int).tolist()
    assert out[0, 2].tolist() == [178, 178, 178]  # ignore drawn white: (100 + 255) / 2


def test_tile_and_save_png(tmp_path):
    a = np.zeros((5, 4, 3), np.uint8)
    b = np.full((5, 6, 3), 255, np.uint8)
    t = tile([a, b], titles=["a", "b"], pad=2)
    assert t.shape == (5 + 12, 12, 3)
    save_png(tmp_path / "t.png", t)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "t.png")), t)
    with pytest.raises(ValueError, match="height"):
        tile([a, b[:3]])
