"""Benchmark of one SeeNet training step against the CAM baseline, and of attention maps.

One SGD step (forward, loss, backward, optimiser step) of ``SeeNet(erase_mode="seenet")`` is
timed against ``erase_mode="cam"`` (S_A alone, the same backbone and head) in the paper's
configuration: VGG16 to conv5_3, 3 x 512 heads, 224 x 224 images, batch 4. The two steps run
interleaved and the medians of the repeats are compared (SPEC section 5 goal: the SeeNet step at
most 1.35 x the CAM step). Then ``attention_maps`` throughput (images per second, eval mode) is
measured with and without horizontal flipping.

Weights are random (the cost does not depend on them). Absolute times count only on a GPU.

Usage::

    python benchmarks/bench_train_step.py [--repeats 5] [--batch 4] [--size 224] [--threads N]
        [--backbone vgg16] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_times, print_table  # noqa: E402

from seenet.models.seenet import SeeNet  # noqa: E402

GOAL = 1.35


def make_step(model: SeeNet, images: torch.Tensor, labels: torch.Tensor):
    opt = torch.optim.SGD(model.param_groups(1e-3, 2e-4), lr=1e-3, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = model.loss(model(images, labels), labels)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    n, k = args.batch, 20
    images = torch.randn(n, 3, args.size, args.size, device=device)
    labels = torch.zeros(n, k, device=device)
    labels[torch.arange(n), torch.arange(n) % k] = 1
    labels[0, 5] = 1

    models = {
        mode: SeeNet(args.backbone, num_classes=k, erase_mode=mode).to(device).train()
        for mode in ("seenet", "cam")
    }
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(
        f"device {device} ({torch.get_num_threads()} CPU threads{load}), backbone {args.backbone}, "
        f"3x512 heads, {args.size}x{args.size}, batch {n}, {args.repeats} repeats (median)\n"
    )
    steps = [make_step(models[m], images, labels) for m in ("seenet", "cam")]
    t_seenet, t_cam = median_times(steps, args.repeats, args.warmup, device)
    ratio = t_seenet / t_cam
    print_table(
        ["SGD step", "median ms", "ratio to cam"],
        [
            ["cam (S_A only)", f"{t_cam * 1e3:.1f}", "1.00"],
            ["seenet (S_A, S_B, S_C)", f"{t_seenet * 1e3:.1f}", f"{ratio:.2f}"],
        ],
    )
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"\nseenet step / cam step = {ratio:.2f} ({verdict} the goal <= {GOAL})\n")

    model = models["seenet"].eval()

    def maps(flip: bool):
        def run() -> None:
            with torch.no_grad():
                model.attention_maps(images, labels, flip=flip)

        return run

    t_plain, t_flip = median_times([maps(False), maps(True)], args.repeats, args.warmup, device)
    print_table(
        ["attention_maps", "median ms / batch", "images / s", "ratio to no flip"],
        [
            ["flip=False", f"{t_plain * 1e3:.1f}", f"{n / t_plain:.2f}", "1.00"],
            ["flip=True", f"{t_flip * 1e3:.1f}", f"{n / t_flip:.2f}", f"{t_flip / t_plain:.2f}"],
        ],
    )


if __name__ == "__main__":
    main()
