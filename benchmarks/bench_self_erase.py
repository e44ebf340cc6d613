"""Benchmark of ``seenet.functional.self_erase`` (forward + backward) against the eager composition.

The eager composition is the same formulas written as separate PyTorch ops with autograd:
``r = relu(F); x_b = r * T; x_c = r * B``. Both paths compute their masks the same way, so the
difference is the mask-and-flip step itself. Reported per shape and dtype: median milliseconds of
forward + backward, the speed-up, and the bytes each path saves for backward (measured with
``torch.autograd.graph.saved_tensors_hooks``).

On a CUDA device it adds the GPU rows (SPEC section 5): forward + backward of the fused Triton
path (``backend="triton"``) against the eager composition and against ``torch.compile`` of the eager
composition (inductor), for the VGG16 conv5 shapes and N=16 C=2048 28x28, in float32 and bfloat16.
For each path it prints median milliseconds, the effective bandwidth (the bytes that path must move
divided by its time; see :func:`traffic_bytes`) and that bandwidth as a fraction of a measured
device-to-device copy (read + write bytes of a 1 GiB ``copy_``), the device's practical peak.

Usage::

    python benchmarks/bench_self_erase.py [--repeats 20] [--threads N] [--gpu-only]
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


def make_inputs(shape, dtype, device):
    """Seeded features (requiring grad), erasing map and output gradients."""
    g = torch.Generator(device="cpu").manual_seed(0)
    n, c, h, w = shape
    f = torch.randn(n, c, h, w, generator=g).to(device, dtype).requires_grad_()
    m = torch.rand(n, 1, h, w, generator=g).to(device)
    return f, m, (torch.randn_like(f), torch.randn_like(f))


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
            f, m, grads = make_inputs((n, c, h, w), dtype, device)

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


# ---------------------------------------------------------------------------------------------
# GPU rows: fused Triton path vs eager composition vs torch.compile of the eager composition
# ---------------------------------------------------------------------------------------------

GPU_SHAPES = [
    ("vgg16 conv5 224/16 b16", 16, 512, 14, 14),
    ("vgg16 conv5 321/8 b10", 10, 512, 41, 41),
    ("large b16", 16, 2048, 28, 28),
]
GPU_GOALS = {"vgg16": 1.5, "large": 2.0}  # speed-up over eager (SPEC section 5)


def traffic_bytes(path: str, n: int, c: int, h: int, w: int, elem: int) -> int:
    """Bytes a path must read and write in memory for one forward + backward.

    Per feature element (``elem`` bytes per float):

    - ``fused`` (Triton) and ``compiled``: forward reads ``F`` and writes ``x_b``, ``x_c`` and the
      1-byte sign mask; backward reads ``g_b``, ``g_c`` and the sign mask and writes the gradient:
      ``6 * elem + 2``. This is the minimum for the op; inductor fuses each direction into one
      kernel at best, so the same count is used for it (an upper bound on its bandwidth).
    - ``eager``: one pass per op. Forward ``relu`` (read F, write r), ``r * t``, ``r * b``
      (read r, write): ``6 * elem``; backward ``g_b * t``, ``g_c * b`` (read, write), their sum
      (read 2, write 1), the ReLU backward (read the sum and the saved ``r``, write): ``10 * elem``.

    Per pixel, every path reads the float32 erasing map twice (maximum, then masks) and writes and
    reads the two 1-byte masks: 12 bytes (small next to the ``C`` feature elements per pixel).
    """
    elems, pixels = n * c * h * w, n * h * w
    per_elem = 16 * elem if path == "eager" else 6 * elem + 2
    return elems * per_elem + pixels * 12


def copy_bandwidth(device: str, repeats: int, nbytes: int = 2**30) -> float:
    """Measured device-to-device copy bandwidth in bytes/s (read + write of a 1 GiB buffer)."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    seconds = median_times([lambda: dst.copy_(src)], repeats, device=device)[0]
    return 2 * nbytes / seconds


def _compile_limit(limit: int) -> None:
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, limit)


def bench_gpu(shapes, dtypes, device: str, repeats: int, backend: str = "triton") -> None:
    """Print the GPU table: eager, torch.compile(eager) and the fused path per shape and dtype."""
    _compile_limit(64)
    peak = copy_bandwidth(device, repeats)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    print(f"\n# GPU: {name}; device-to-device copy {peak / 1e9:.0f} GB/s (1 GiB copy_, median of "
          f"{repeats}); forward + backward, medians of {repeats} repeats")
    print("# goals (SPEC 5): large >= 2x eager, >= 1x compiled, >= 80% of copy bandwidth; "
          "vgg16 >= 1.5x eager")

    def fused(x, a):
        return self_erase(x, a, backend=backend)

    rows = []
    for label, n, c, h, w in shapes:
        for dtype in dtypes:
            f, m, grads = make_inputs((n, c, h, w), dtype, device)
            compiled = torch.compile(eager_composition, dynamic=False)
            paths = {"eager": eager_composition, "compiled": compiled, "fused": fused}
            times = dict(zip(paths, median_times(
                [fwd_bwd(fn, f, m, grads) for fn in paths.values()], repeats, warmup=3,
                device=device,
            )))
            goal = next((v for k, v in GPU_GOALS.items() if label.startswith(k)), None)
            for path, seconds in times.items():
                moved = traffic_bytes(path, n, c, h, w, f.element_size())
                rows.append([
                    label, str(dtype).replace("torch.", ""), path, f"{seconds * 1e3:.3f}",
                    f"{moved / seconds / 1e9:.0f}", f"{moved / seconds / peak:.0%}",
                    f"{times['eager'] / seconds:.2f}x", f"{times['compiled'] / seconds:.2f}x",
                    f"{goal}x eager" if path == "fused" and goal else "",
                ])
            del f, m, grads
    print_table(
        ["shape", "dtype", "path", "ms", "GB/s", "of copy BW", "vs eager", "vs compiled", "goal"],
        rows,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU rows")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.gpu_only:
        print(f"# CPU: {torch.get_num_threads()} threads, torch {torch.__version__}")
        print("# forward + backward of the mask-and-flip step; medians of "
              f"{args.repeats} repeats; goal (SPEC 5): >= 1.2x eager on 'spec cpu goal b8' fp32,")
        print("# saved ratio <= 0.26 in fp32 and <= 0.51 in bf16")
        bench(CPU_SHAPES, [torch.float32, torch.bfloat16], "cpu", args.repeats)
    if not torch.cuda.is_available():
        print("\n# GPU rows skipped: no CUDA device")
        return
    from seenet.ops import available_backends

    if "triton" not in available_backends():
        print("\n# GPU rows skipped: Triton does not import")
        return
    bench_gpu(GPU_SHAPES, [torch.float32, torch.bfloat16], "cuda", args.repeats)


if __name__ == "__main__":
    main()
