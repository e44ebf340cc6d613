"""The ablation on a second synthetic generator with the demo's premise, drawn differently.

The premise is the demo's: a body whose look every class shares, a small class-specific part, and
a class context in the background (:mod:`seenet.data.synthetic`). Everything else differs: bodies
are rotated ellipses with a shared striped texture in grey-blue tones (the demo's: pale, warm
polygons); parts are told apart by their shape (triangle, square, a pair of discs, a bar) in one
shared dark colour (the demo's: by their hue); contexts are oriented patterns, one per class (the
demo's: sky, water, road and rails colours). A method choice that holds on both generators is not
an artefact of one of them.

Run (about 15 minutes on 2 CPU cores)::

    python examples/experiments/second_generator.py --out ablation-gen2 --seeds 0,1,2

It runs :func:`seenet.ablate.run_ablation` with this generator in place of the demo's and writes
the same ``ablation.json``, ``ablation.md`` and ``curves.png``. ``--option key=value`` changes a
demo setting or passes a :class:`seenet.SeeNet` keyword, as ``seenet ablate --option`` does::

    python examples/experiments/second_generator.py --out gen2-dropout --seeds 10,11,12 \
        --option head_dropout=0.5
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageDraw

import seenet.data.synthetic as syn

CLASSES = syn.SYNTHETIC_CLASSES
VOC_IDS = {"aeroplane": 1, "boat": 4, "car": 7, "train": 19}  # as the demo's data
BODY = np.array([(150, 165, 185), (120, 140, 160), (170, 175, 190), (135, 150, 150)], np.float32)
PART = np.array((60, 50, 45), np.float32)


def _context(rng, k, size):
    """Background ``k``: an oriented pattern on a random base colour."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = rng.uniform(110, 160, 3).astype(np.float32)
    f = rng.uniform(0.25, 0.45)
    pattern = [
        np.sin(f * yy),  # horizontal stripes
        np.sin(f * xx),  # vertical stripes
        np.sin(f * (xx + yy) / 1.4),  # diagonal
        np.sin(f * xx) * np.sin(f * yy),
    ][k]  # checks
    img = base[None, None] + 28 * pattern[..., None]
    return img + rng.normal(0, 4, img.shape).astype(np.float32)


def _ellipse(size, cx, cy, a, b, th):
    """Mask of an ellipse with half-axes ``a``, ``b`` rotated by ``th``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
    v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _part(size, name, x, y, r, th):
    """Mask of the class-specific part: its shape names the class."""
    im = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(im)
    c, s = np.cos(th), np.sin(th)
    if name == "aeroplane":
        pts = [(x + r * np.cos(th + a), y + r * np.sin(th + a)) for a in (0, 2.1, 4.2)]
        d.polygon(pts, fill=1)
    elif name == "boat":
        pts = [
            (x + r * np.cos(th + a) * 0.9, y + r * np.sin(th + a) * 0.9)
            for a in (0.785, 2.356, 3.927, 5.498)
        ]
        d.polygon(pts, fill=1)
    elif name == "car":
        for o in (-0.6, 0.6):
            px, py = x + o * r * c, y + o * r * s
            d.ellipse([px - 0.45 * r, py - 0.45 * r, px + 0.45 * r, py + 0.45 * r], fill=1)
    else:
        pts = [
            (x + dx * c - dy * s, y + dx * s + dy * c)
            for dx, dy in (
                (-1.2 * r, -0.3 * r),
                (1.2 * r, -0.3 * r),
                (1.2 * r, 0.3 * r),
                (-1.2 * r, 0.3 * r),
            )
        ]
        d.polygon(pts, fill=1)
    return np.asarray(im, bool)


def render_sample(rng, size=128, classes=CLASSES, max_objects=3, context_prob=0.8):
    """One image and its labels, as :func:`seenet.data.synthetic.render_sample` returns them."""
    n = int(rng.integers(1, max_objects + 1))
    names = [classes[int(rng.integers(len(classes)))] for _ in range(n)]
    own = rng.random() < context_prob
    other = int(rng.integers(4))
    k = CLASSES.index(names[0]) if own else other
    image = _context(np.random.default_rng(int(rng.integers(2**63))), k, size)
    mask = np.zeros((size, size), np.uint8)
    scale = {1: (0.28, 0.4), 2: (0.2, 0.28), 3: (0.17, 0.23)}[n]
    drawn = []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for name in names:
        a = rng.uniform(*scale) * size
        b = a * rng.uniform(0.45, 0.75)
        cx, cy = rng.uniform(a, size - a), rng.uniform(a, size - a)
        th = rng.uniform(0, np.pi)
        body = _ellipse(size, cx, cy, a, b, th)
        side = rng.uniform(0, 2 * np.pi)  # where on the rim the part sits
        px = cx + 0.85 * (a * np.cos(side) * np.cos(th) - b * np.sin(side) * np.sin(th))
        py = cy + 0.85 * (a * np.cos(side) * np.sin(th) + b * np.sin(side) * np.cos(th))
        part = _part(size, name, px, py, 0.32 * b + 2, rng.uniform(0, np.pi))
        body &= ~part
        colour = BODY[int(rng.integers(len(BODY)))]
        stripes = 1 + 0.12 * np.sin(0.5 * (xx * np.cos(th) + yy * np.sin(th)))
        image[body] = colour[None] * stripes[body][:, None]
        image[part] = PART + rng.normal(0, 6, 3)
        obj = body | part
        mask[obj] = VOC_IDS[name]
        drawn = [(nm, bb & ~obj, pp & ~obj) for nm, bb, pp in drawn]
        drawn.append((name, body, part))
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return syn.SyntheticSample(
        image=np.clip(image, 0, 255).round().astype(np.uint8),
        mask=mask,
        context=syn.CONTEXTS[k],
        objects=tuple(syn.SyntheticObject(*d) for d in drawn),
    )


def main(argv: list[str] | None = None) -> None:
    """Run the ablation on this generator's data."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seeds", default="0,1,2", help="seeds (0,1,2)")
    parser.add_argument("--modes", default="cam,acol,seenet", help="erasing modes")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="key=value",
        help="a demo setting or SeeNet keyword, as seenet ablate's; repeatable",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    parser.add_argument("--branches", action="store_true",
                        help="also score S_A's and S_B's maps alone, as seenet ablate --branches")
    args = parser.parse_args(argv)
    from seenet.ablate import merge_options, run_ablation

    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    # make_synthetic_voc draws its images through this name; the patch holds in this process
    # only, so the ablation runs here, one training run after the other (jobs=1)
    syn.render_sample = render_sample
    run_ablation(args.out, modes=args.modes.split(","),
                 seeds=[int(s) for s in args.seeds.split(",")], branches=args.branches,
                 jobs=1, **merge_options(args.option))  # fmt: skip


if __name__ == "__main__":
    main()
