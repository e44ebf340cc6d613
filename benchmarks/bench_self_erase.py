"""Benchmark of ``seenet.functional.self_erase`` (forward + backward) against the eager composition.

The eager composition is the same formulas written as separate PyTorch ops with autograd:
``r = relu(F); x_b = r * T; x_c = r * B``. Both paths compute their masks the same way, so the
difference is the mask-and-flip step itself. Reported per shape and dtype: median milliseconds of
forward + backward, the speed-up, and the bytes each path saves for backward (measured with
``torch.autograd.graph.saved_tensors_hooks``).

Usage::

    python benchmarks/bench_self_erase.py [--repeats 20] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_times, print_table  # noqa: E402

from seenet.functional import self_erase  # noqa: E402
from seenet.ops import _reference  # noqa: E402

# (label, N, C, h, w): VGG16 conv5 at 224x224 (stride 16, batch 16) and at a 321 crop (stride 8,
# batch 10), and the CPU goal shape of SPEC section 5.
CPU_SHAPES = [
    ("vgg16 conv5 224/16 b16", 16, 512, 14, 14),
    ("vgg16 conv5 321/8 b10", 10, 512, 41, 41),
    ("spec cpu goal b8", 8, 512, 41, 41),
]


def eager_composition(features, attention, dh=0.7, dl=0.05, dbg=0.375):
    """The formulas as separate eager ops (the baseline)."""
    a, mx, info = _reference.image_max(attention)
    t = _reference.ternary(a, mx, info, dh, dl).to(features.dtype)
    b = _reference.background(a, mx, info, dbg).to(features.dtype)
    r = torch.relu(features)
    return r * t, r * b


def saved_bytes(fn, features, attention) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(features, attention)
    return total


def fwd_bwd(fn, features, attention, grads):
    def run():
        features.grad = None
        x_b, x_c = fn(features, attention)
        torch.autograd.backward((x_b, x_c), grads)

    return run


def bench(shapes, dtypes, device, repeats):
    rows = []
    for label, n, c, h, w in shapes:
        for dtype in dtypes:
            g = torch.Generator(device="cpu").manual_seed(0)
            f = torch.randn(n, c, h, w, generator=g).to(device, dtype).requires_grad_()
            m = torch.rand(n, 1, h, w, generator=g).to(device)
            grads = (torch.randn_like(f), torch.randn_like(f))

            def ours(x, a):
                return self_erase(x, a, backend="reference" if device == "cpu" else "auto")

            t_eager, t_ours = median_times(
                [fwd_bwd(eager_composition, f, m, grads), fwd_bwd(ours, f, m, grads)],
                repeats, device=device,
            )
            b_eager = saved_bytes(eager_composition, f, m)
            b_ours = saved_bytes(ours, f, m)
            rows.append([
                label, str(dtype).replace("torch.", ""), f"{t_eager * 1e3:.2f}",
                f"{t_ours * 1e3:.2f}", f"{t_eager / t_ours:.2f}x",
                f"{b_eager / 2**20:.2f}", f"{b_ours / 2**20:.2f}", f"{b_ours / b_eager:.3f}",
            ])
    print_table(
        ["shape", "dtype", "eager ms", "self_erase ms", "speed-up", "eager saved MiB",
         "self_erase saved MiB", "saved ratio"],
        rows,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# CPU: {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("# forward + backward of the mask-and-flip step; medians of "
          f"{args.repeats} repeats; goal (SPEC 5): >= 1.2x eager on 'spec cpu goal b8' fp32,")
    print("# saved ratio <= 0.26 in fp32 and <= 0.51 in bf16")
    bench(CPU_SHAPES, [torch.float32, torch.bfloat16], "cpu", args.repeats)
    if not torch.cuda.is_available():
        print("\n# GPU rows skipped: no CUDA device")


if __name__ == "__main__":
    main()
