"""
Reproducing the paper's ablation (Table 1) with ``erase_mode``
==============================================================

Table 1 of the paper compares three attention networks, each followed by the same proxy ground
truth and the same DeepLab-LargeFOV (single-scale test, no CRF, PASCAL VOC 2012 ``val``):

========================================  ===================  ===============
setting                                   ``erase_mode``        val mIoU (paper)
========================================  ===================  ===============
1: ACoL (Zhang et al., CVPR 2018)         ``"acol"``            56.1 %
2: SeeNet without sign flipping           ``"zero"``            55.8 %
3: SeeNet                                 ``"seenet"``          57.3 %
========================================  ===================  ===============

:class:`seenet.SeeNet` builds each of them, and a fourth baseline, plain CAM (``"cam"``: the branch
S_A alone). This page shows what the branches of each setting see, checks that each trains, and
gives the commands that run the comparison on the built-in synthetic data and on VOC.
"""

# %%
# What each setting feeds its branches
# ------------------------------------
# A synthetic image from :mod:`seenet.data.synthetic`: a train on rails. Its class-specific part
# (the blue cab) is what a classifier notices first, so we stand in for S_A's class activation map
# with a map that peaks on the cab and covers the body weakly; the erasing map is that map divided
# by its maximum. As in :ref:`sphx_glr_auto_examples_plot_02_mask_and_flip.py`, the image itself
# plays the feature map, so that we can look at what each branch receives:
#
# The zones are drawn as in that page: attention yellow, potential green, background blue.
#
# * ``"seenet"``: S_B sees ``max(F, 0) · T`` (attention zone erased, background sign-flipped),
#   S_C the background zone ``M < 0.375 · max M``;
# * ``"zero"``: S_B sees the background zone zeroed instead of flipped; S_C as in ``"seenet"``;
# * ``"acol"``: S_B sees the features with everything above ``acol_threshold · max M`` (0.6,
#   ACoL's default) erased; there is no S_C;
# * ``"cam"``: no S_B, no S_C.
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage

import seenet
from seenet.data.synthetic import render_sample
from seenet.functional import self_erase, ternary_mask

sample = render_sample(np.random.default_rng(3), size=128, max_objects=1)
obj = sample.objects[0]
print("labels:", sample.labels, "on", sample.context)

cam = ndimage.gaussian_filter(obj.part.astype(float), 6)
cam = cam / cam.max() + 0.8 * ndimage.gaussian_filter(obj.body.astype(float), 6)
erasing = torch.from_numpy(cam / cam.max()).float()[None, None]  # (1, 1, H, W) in [0, 1]
features = torch.from_numpy(sample.image).permute(2, 0, 1)[None].float() / 255

x_b_seenet, x_c = self_erase(features, erasing)  # delta_high 0.7, delta_low 0.05
x_b_zero, _ = self_erase(features, erasing, background="zero")
# ACoL's S_B input is the fused op's background input with the threshold at 0.6
_, x_b_acol = self_erase(features, erasing, delta_bg=0.6)

mask = ternary_mask(erasing)[0, 0].numpy()  # 0 attention, 1 potential, -1 background
colors = np.array([[255, 215, 0], [40, 160, 80], [60, 80, 200]], np.uint8)
zones = colors[np.select([mask == 0, mask == 1], [0, 1], 2)]
panels = [
    ("image", sample.image, None),
    ("erasing map M", erasing[0, 0], "jet"),
    ("zones (ternary mask T)", zones, None),
    ('S_B, "seenet"', x_b_seenet[0].mean(0), "coolwarm"),
    ('S_B, "zero"', x_b_zero[0].mean(0), "coolwarm"),
    ('S_B, "acol"', x_b_acol[0].mean(0), "coolwarm"),
    ('S_C, "seenet" and "zero"', x_c[0].mean(0), "coolwarm"),
]
fig, axes = plt.subplots(1, len(panels), figsize=(15, 2.6), layout="constrained")
for ax, (title, img, cmap) in zip(axes, panels):
    limits = {"vmin": -1, "vmax": 1} if cmap == "coolwarm" else {}
    ax.imshow(img, cmap=cmap, **limits)
    ax.set_title(title, fontsize=8)
    ax.axis("off")

# %%
# One training step of each setting
# ---------------------------------
# Everything else stays the same: the backbone, the branch structure, the thresholds and the
# training recipe. The loss has a term per branch the setting has; the labels are required in the
# erasing modes, since the ground-truth classes drive the erasing map.
from torch import nn  # noqa: E402

images = torch.randn(4, 3, 64, 64)
labels = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 1]]).float()
for mode in ("seenet", "zero", "acol", "cam"):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 16, 3, stride=4, padding=1), nn.ReLU())
    model = seenet.SeeNet(backbone, num_classes=4, erase_mode=mode, hidden_channels=16, num_convs=1)
    out = model(images, labels)
    loss = model.loss(out, labels)
    loss.backward()
    logits = (out.logits_a, out.logits_b, out.logits_c)
    branches = [name for name, x in zip("ABC", logits) if x is not None]
    print(f"{mode:>6}: branches S_{', S_'.join(branches)}; loss {loss.item():.4f}")

try:
    seenet.SeeNet(backbone, num_classes=4, hidden_channels=16, num_convs=1).train()(images)
except ValueError as error:
    print("without labels:", error)

# %%
# On the built-in data
# --------------------
# :func:`seenet.data.synthetic.make_synthetic_voc` (``seenet make-synthetic``) writes a synthetic
# data set in the VOC layout that has the two problems the paper is about: each object has a small
# class-specific part that a classifier latches onto, and each class usually sits on its own
# background context (trains on rails). ``seenet demo`` runs the whole pipeline on it on a CPU in
# minutes and compares the CAM baseline with SeeNet:
#
# .. code-block:: bash
#
#     seenet demo --out demo-output          # about 10 minutes on 2 cores; --quick: under 3
#
# ``seenet ablate`` runs the paper's Table 1 on this data over several seeds: every setting
# trained with the demo's settings on the same images, its maps and proxy labels scored, mean and
# standard deviation over the seeds (:func:`seenet.ablate.run_ablation`):
#
# .. code-block:: bash
#
#     seenet ablate --out ablation --modes cam,acol,zero,seenet --seeds 0,1,2
#
# The same from Python, one setting at a time, with the stage functions of
# :mod:`seenet.pipeline` and the demo's configuration (:func:`seenet.demo.demo_config`:
# EfficientNet-Lite0 with the ImageNet weights of an installed package):
#
# .. code-block:: python
#
#     from pathlib import Path
#
#     from seenet import pipeline
#     from seenet.demo import PRESETS, demo_config, make_data
#
#     settings = PRESETS["full"]
#     make_data(Path("synthetic"), settings, seed=0)
#     for mode in ("cam", "acol", "zero", "seenet"):
#         cfg = demo_config("synthetic", f"runs/synthetic_{mode}", mode, settings)
#         pipeline.train_attention(cfg)
#         pipeline.attention_maps(cfg)
#         print(mode, f"attention mIoU {pipeline.evaluate_maps(cfg)['miou']:.1%}")
#
# On PASCAL VOC
# -------------
# The recipe ships one configuration per setting (see :doc:`/tutorials/train_voc` for the data,
# the DSS saliency maps and the ImageNet weights); each runs the five steps under its own
# ``work_dir``:
#
# .. code-block:: bash
#
#     ROOT=data.root=data/VOCdevkit/VOC2012
#     for cfg in acol_vgg16 zero_vgg16 seenet_vgg16; do
#       for step in train-attention attention-maps proxy-gt train-seg evaluate; do
#         seenet $step examples/voc/configs/$cfg.yaml $ROOT
#       done
#     done
#
# ``seenet evaluate`` prints the per-class IoU table and the mean IoU of each, to compare with the
# paper's 56.1 % (``acol``), 55.8 % (``zero``) and 57.3 % (``seenet``).
