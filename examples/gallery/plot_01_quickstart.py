"""
Quickstart: self-erasing heads on your timm backbone
====================================================

From ``import seenet`` to class attention maps in a few lines. :class:`seenet.SeeNet` puts the
paper's three branches on any timm backbone (or any module that returns a feature map): S_A finds
the most discriminative regions, S_B sees the features with those regions erased and the background
sign-flipped, S_C sees only the background and learns that it holds no object.

The models here start from random weights, so the maps mean nothing yet; with
``pretrained=True`` the backbone starts from timm's ImageNet weights, and
:doc:`/tutorials/train_voc` trains the whole network on PASCAL VOC.
"""

# %%
# A SeeNet on a timm backbone
# ---------------------------
# ``backbone`` is a timm model name; SeeNet creates it with ``features_only=True`` and takes its
# deepest feature level (VGG16, the paper's backbone and the default, stops at conv5_3, stride 16).
# The branch width and depth default to the paper's three 3 × 3 convolutions of 512 channels; we
# make them narrower to keep this page fast.
import torch

import seenet

torch.manual_seed(0)
model = seenet.SeeNet("resnet18", num_classes=20, hidden_channels=128, num_convs=2)
print("feature channels:", model.feature_channels)
print("branches:", [type(h).__name__ for h in (model.head_a, model.head_b, model.head_c)])

# %%
# Training step
# -------------
# Training needs only image-level labels, multi-hot ``(N, K)``. The ground-truth labels drive the
# erasing map, so they are required when training. :meth:`~seenet.SeeNet.loss` is the paper's
# ``BCE(S_A, y) + BCE(S_B, y) + BCE(S_C, 0)``; :meth:`~seenet.SeeNet.param_groups` gives the new
# layers ten times the backbone's learning rate, as the authors' recipe does.
images = torch.randn(2, 3, 224, 224)  # ImageNet-normalised images
labels = torch.zeros(2, 20)
labels[0, 14] = 1  # person
labels[1, [8, 11]] = 1  # chair and dining table

optimizer = torch.optim.SGD(model.param_groups(lr=1e-3, weight_decay=2e-4), lr=1e-3, momentum=0.9)
model.train()
out = model(images, labels)
loss = model.loss(out, labels)
optimizer.zero_grad()
loss.backward()
optimizer.step()

print("logits:", [tuple(t.shape) for t in (out.logits_a, out.logits_b, out.logits_c)])
print("class activation maps of S_A:", tuple(out.cams_a.shape))
print("erasing map:", tuple(out.attention.shape))
print(f"loss: {loss.item():.4f}")

# %%
# Class attention maps
# --------------------
# :meth:`~seenet.SeeNet.attention_maps` discards S_C, fuses the normalised maps of S_A and S_B by
# their maximum, adds the horizontally flipped image (``flip=True``), and resizes to the input (or
# to ``size``). Classes outside the labels are 0. With ``labels=None`` the classes are the ones S_A
# predicts.
model.eval()
maps = model.attention_maps(images, labels)  # (N, K, H, W) in [0, 1]
print("maps:", tuple(maps.shape), f"range [{maps.min():.2f}, {maps.max():.2f}]")
print("classes with a map in image 0:", maps[0].flatten(1).amax(1).nonzero().flatten().tolist())
maps = model.attention_maps(images, size=(375, 500))  # predicted labels, at the photo's size
print("maps at the original size:", tuple(maps.shape))

# %%
# Your own backbone
# -----------------
# Any :class:`torch.nn.Module` that maps ``(N, 3, H, W)`` images to ``(N, C, h, w)`` features works;
# SeeNet measures ``C`` with a dry run. Here a two-layer network:
from torch import nn  # noqa: E402

backbone = nn.Sequential(
    nn.Conv2d(3, 32, 3, stride=4, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1)
)
small = seenet.SeeNet(backbone, num_classes=20, hidden_channels=32, num_convs=1)
print("module backbone, feature channels:", small.feature_channels)
print("maps:", tuple(small.eval().attention_maps(images, labels).shape))

# %%
# The ablation settings of the paper's Table 1 are one argument away: ``erase_mode="zero"``
# (background zeroed instead of flipped), ``"acol"`` (ACoL's erasing, no S_C) and ``"cam"``
# (S_A alone). See :ref:`sphx_glr_auto_examples_plot_06_ablation.py`.
for mode in ("seenet", "zero", "acol", "cam"):
    m = seenet.SeeNet(backbone, num_classes=20, erase_mode=mode, hidden_channels=32, num_convs=1)
    present = [name for name in ("head_a", "head_b", "head_c") if getattr(m, name) is not None]
    print(f"{mode:>6}: {', '.join(present)}")

# %%
# The heads on their own
# ----------------------
# The pieces are public too, for a network of your own: a :class:`seenet.SelfErasingHead` per
# branch, :func:`seenet.functional.class_agnostic_attention` for the erasing map and
# :func:`seenet.functional.self_erase` for the inputs of S_B and S_C. This is what SeeNet's
# forward does:
import timm  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from seenet.functional import class_agnostic_attention, self_erase  # noqa: E402

features_of = timm.create_model("resnet18", pretrained=False, features_only=True, out_indices=(-1,))
channels = features_of.feature_info.channels()[-1]
head_a, head_b, head_c = (seenet.SelfErasingHead(channels, 20, hidden_channels=64) for _ in "abc")

features = features_of(images)[-1]  # (N, 512, 7, 7)
out_a = head_a(features)  # .logits (N, K), .cams (N, K, h, w)
erasing = class_agnostic_attention(out_a.cams, labels)  # (N, 1, h, w), detached
x_b, x_c = self_erase(features, erasing)  # C-ReLU with the ternary mask; background only
out_b, out_c = head_b(x_b), head_c(x_c)
loss = (
    F.binary_cross_entropy_with_logits(out_a.logits, labels)
    + F.binary_cross_entropy_with_logits(out_b.logits, labels)
    + F.binary_cross_entropy_with_logits(out_c.logits, torch.zeros_like(labels))
)
print(f"hand-made SeeNet loss: {loss.item():.4f}")

# %%
# Models by name, and weights
# ---------------------------
# The registry names the paper's configurations; ``pretrained`` is ``False``, ``True`` (timm's
# ImageNet weights of the backbone; offline, with ``HF_HUB_OFFLINE=1``, it fails within seconds
# and says how to pass a file) or the path of a local ``.safetensors`` or state-dict file.
# :meth:`~seenet.SeeNet.save_pretrained` writes a whole model that ``pretrained=path`` reads back.
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

print(seenet.list_models())
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "seenet_resnet18.safetensors"
    model.save_pretrained(path)
    again = seenet.SeeNet(
        "resnet18", num_classes=20, hidden_channels=128, num_convs=2, pretrained=path
    )
pairs = zip(model.state_dict().values(), again.state_dict().values())
same = all(torch.equal(a, b) for a, b in pairs)
print("weights read back:", same)
