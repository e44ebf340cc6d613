"""SeeNet against references written from the paper's equations (SPEC 1.1-1.9), and learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import seenet
from seenet._io import save_state_dict_file
from seenet.models.backbones import TimmBackbone
from seenet.models.seenet import SeeNet, SeeNetOutput

K = 3


def tiny_backbone(channels: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, stride=2, padding=1),
    )


def tiny_model(mode: str = "seenet", **kwargs) -> SeeNet:
    # the references below are the paper's C-ReLU: max(F, 0) times the masks ("crelu"); the
    # tiny backbone ends in a convolution, so its features are signed and the policy matters
    kwargs.setdefault("feature_policy", "crelu")
    model = SeeNet(tiny_backbone(), num_classes=K, erase_mode=mode, hidden_channels=6, **kwargs)
    # larger weights than the authors' 0.01 so that every branch gives distinct, non-trivial maps
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("head"):
                p.normal_(0, 0.3)
    return model


# ------------------------------------------------------------------------------------------------
# references from the equations


def ref_erasing_map(cams, labels):
    """SPEC 1.1: relu, each labelled class divided by its own maximum, max over classes."""
    n, k, h, w = cams.shape
    out = torch.zeros(n, 1, h, w, dtype=torch.float64)
    for i in range(n):
        for c in range(k):
            if labels[i, c]:
                a = cams[i, c].double().clamp(min=0)
                if a.max() > 0:
                    out[i, 0] = torch.maximum(out[i, 0], a / a.max())
    return out


def ref_inputs(feats, m, mode, dh=0.7, dl=0.05, dbg=None, acol=0.6, rectify=True):
    """Inputs of S_B and S_C (SPEC 1.3-1.5, 1.9), pixel zones relative to the per-image max."""
    dbg = (dh + dl) / 2 if dbg is None else dbg
    r = feats.double().clamp(min=0) if rectify else feats.double()
    x_b = torch.zeros_like(r)
    x_c = torch.zeros_like(r)
    for i in range(feats.shape[0]):
        mx = m[i].max()
        if not mx > 0:
            x_b[i] = r[i]
            continue
        t = torch.ones_like(m[i])
        t[m[i] >= dh * mx] = 0
        t[m[i] < dl * mx] = 0 if mode == "zero" else -1
        x_b[i] = r[i] * t
        x_c[i] = r[i] * (m[i] < dbg * mx)
        if mode == "acol":
            x_b[i] = r[i] * (m[i] < acol * mx)
    return x_b.float(), x_c.float()


def capture_head_inputs(model):
    seen = {}
    hooks = []
    for name in ("head_a", "head_b", "head_c"):
        head = getattr(model, name)
        if head is not None:
            hooks.append(
                head.register_forward_pre_hook(
                    lambda mod, args, name=name: seen.__setitem__(name, args[0].detach().clone())
                )
            )
    return seen, hooks


def bce(z, y):
    """Mean binary cross-entropy written out: -(y log s(z) + (1 - y) log(1 - s(z)))."""
    s = 1 / (1 + torch.exp(-z.double()))
    return -(y * torch.log(s) + (1 - y) * torch.log(1 - s)).mean()


IMAGES = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
LABELS = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 1], [0, 0, 1]], dtype=torch.float32)


# ------------------------------------------------------------------------------------------------
# structure and shapes


@pytest.mark.parametrize(
    "mode, branches",
    [
        ("seenet", ("head_a", "head_b", "head_c")),
        ("zero", ("head_a", "head_b", "head_c")),
        ("acol", ("head_a", "head_b")),
        ("cam", ("head_a",)),
    ],
)
def test_each_mode_builds_its_branches(mode, branches):
    model = tiny_model(mode)
    for name in ("head_a", "head_b", "head_c"):
        assert (getattr(model, name) is not None) == (name in branches)
    keys = {k.split(".")[0] for k in model.state_dict()}
    assert keys == {"backbone", *branches}
    out = model(IMAGES, LABELS)
    assert isinstance(out, SeeNetOutput)
    assert (out.logits_b is not None) == ("head_b" in branches)
    assert (out.cams_b is not None) == ("head_b" in branches)
    assert (out.logits_c is not None) == ("head_c" in branches)
    assert (out.attention is not None) == (mode != "cam")


@pytest.mark.parametrize(
    "name, channels, stride",
    [("resnet18", 512, 32), ("efficientnet_lite0", 320, 32), ("convnext_atto", 320, 32)],
)
def test_timm_families(name, channels, stride):
    model = SeeNet(name, num_classes=5, hidden_channels=8, num_convs=1)
    assert isinstance(model.backbone, TimmBackbone)
    assert model.feature_channels == channels and model.backbone.reduction == stride
    x = torch.randn(2, 3, 64, 64)
    y = torch.tensor([[1, 0, 0, 0, 1], [0, 0, 1, 0, 0]])
    out = model(x, y)
    h = 64 // stride
    assert out.logits_a.shape == out.logits_b.shape == out.logits_c.shape == (2, 5)
    assert out.cams_a.shape == out.cams_b.shape == (2, 5, h, h)
    assert out.attention.shape == (2, 1, h, h)
    model.loss(out, y).backward()
    assert model.eval().attention_maps(x, y, flip=False).shape == (2, 5, 64, 64)


def test_vgg16_taps_conv5_3_at_stride_16():
    model = SeeNet("vgg16", num_classes=2, hidden_channels=8, num_convs=1)
    bb = model.backbone
    assert bb.feature_index == 4 and bb.reduction == 16 and model.feature_channels == 512
    # the last layer kept is conv5_3's ReLU: pool5 is gone
    layers = list(bb.body.children())
    assert isinstance(layers[-1], nn.ReLU) and isinstance(layers[-2], nn.Conv2d)
    assert sum(isinstance(m, nn.Conv2d) for m in layers) == 13
    out = model(torch.randn(1, 3, 64, 64), torch.tensor([[1, 0]]))
    assert out.cams_a.shape == (1, 2, 4, 4)
    deepest = TimmBackbone("vgg16", feature_index=-1)
    assert deepest.reduction == 32


def test_plain_module_backbone_dry_run_keeps_mode():
    bb = tiny_backbone(5)
    bb.train()
    model = SeeNet(bb, num_classes=K, hidden_channels=4)
    assert model.feature_channels == 5 and model.backbone is bb and bb.training
    assert model(IMAGES, LABELS).cams_a.shape == (4, K, 8, 8)


# ------------------------------------------------------------------------------------------------
# forward against the references


@pytest.mark.parametrize("mode", ["seenet", "zero", "acol"])
def test_forward_matches_reference(mode):
    model = tiny_model(mode)
    seen, hooks = capture_head_inputs(model)
    out = model(IMAGES, LABELS)
    for h in hooks:
        h.remove()
    feats = model.backbone(IMAGES)
    torch.testing.assert_close(seen["head_a"], feats)
    m = ref_erasing_map(out.cams_a.detach(), LABELS)
    torch.testing.assert_close(out.attention.double(), m)
    x_b, x_c = ref_inputs(feats.detach(), m.float(), mode)
    torch.testing.assert_close(seen["head_b"], x_b)
    torch.testing.assert_close(out.logits_b, model.head_b(x_b).logits)
    torch.testing.assert_close(out.cams_b, model.head_b(x_b).cams)
    if mode == "acol":
        assert "head_c" not in seen
        assert seen["head_b"].min() >= 0
    else:
        torch.testing.assert_close(seen["head_c"], x_c)
        torch.testing.assert_close(out.logits_c, model.head_c(x_c).logits)
    if mode == "zero":
        assert seen["head_b"].min() >= 0
    if mode == "seenet":
        # the background zone is sign-flipped: S_B sees negative inputs
        assert seen["head_b"].min() < 0
    # the three zones are all populated in this example, so the modes really differ
    assert (seen["head_b"] == 0).any() and (seen["head_b"] != 0).any()


def test_modes_feed_different_inputs():
    inputs = {}
    for mode in ("seenet", "zero", "acol"):
        torch.manual_seed(0)
        model = tiny_model(mode)
        seen, _ = capture_head_inputs(model)
        model(IMAGES, LABELS)
        inputs[mode] = seen["head_b"]
    # all three zones occur in this example
    assert inputs["seenet"].min() < 0 and (inputs["seenet"] == 0).any()
    assert not torch.equal(inputs["seenet"], inputs["zero"])
    assert not torch.equal(inputs["zero"], inputs["acol"])
    # zero = seenet with the background zone (the negative part) cleared
    torch.testing.assert_close(inputs["zero"], inputs["seenet"].clamp(min=0))


def test_delta_bg_and_thresholds_are_used():
    model = tiny_model("seenet", delta_high=0.5, delta_low=0.2, delta_bg=0.1)
    seen, _ = capture_head_inputs(model)
    out = model(IMAGES, LABELS)
    feats = model.backbone(IMAGES).detach()
    m = ref_erasing_map(out.cams_a.detach(), LABELS).float()
    x_b, x_c = ref_inputs(feats, m, "seenet", dh=0.5, dl=0.2, dbg=0.1)
    torch.testing.assert_close(seen["head_b"], x_b)
    torch.testing.assert_close(seen["head_c"], x_c)


def test_cam_mode_is_plain_cam():
    model = tiny_model("cam")
    out = model(IMAGES)  # no labels needed
    feats = model.backbone(IMAGES)
    torch.testing.assert_close(out.cams_a, model.head_a(feats).cams)
    torch.testing.assert_close(out.logits_a, out.cams_a.mean(dim=(2, 3)))


# ------------------------------------------------------------------------------------------------
# options for the departures of the authors' network (SPEC 1b)


def test_share_bc_makes_s_c_use_s_b_head():
    model = tiny_model("seenet", share_bc=True)
    assert model.head_c is model.head_b
    assert not any(k.startswith("head_c.") for k in model.state_dict())
    seen, _ = capture_head_inputs(model)
    out = model(IMAGES, LABELS)
    feats = model.backbone(IMAGES).detach()
    m = ref_erasing_map(out.cams_a.detach(), LABELS).float()
    x_b, x_c = ref_inputs(feats, m, "seenet")
    torch.testing.assert_close(out.logits_c, model.head_b(x_c).logits)
    # S_C's all-zero target trains S_B's weights
    out.logits_c.sum().backward()
    assert torch.any(model.head_b.classifier.weight.grad != 0)
    # with a separate head it does not
    separate = tiny_model("seenet")
    separate(IMAGES, LABELS).logits_c.sum().backward()
    assert separate.head_b.classifier.weight.grad is None
    assert tiny_model("acol", share_bc=True).head_c is None


def test_share_bc_round_trip(tmp_path):
    model = tiny_model("seenet", share_bc=True)
    model.save_pretrained(tmp_path / "m.safetensors")
    again = SeeNet(tiny_backbone(), num_classes=K, hidden_channels=6, share_bc=True,
                   pretrained=tmp_path / "m.safetensors")
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("mode", ["seenet", "zero", "acol"])
def test_feature_policy_linear_masks_the_features_themselves(mode):
    model = tiny_model(mode, feature_policy="linear")
    seen, _ = capture_head_inputs(model)
    out = model(IMAGES, LABELS)
    feats = model.backbone(IMAGES).detach()
    assert feats.min() < 0  # the tiny backbone ends in a convolution: signed features
    torch.testing.assert_close(seen["head_a"], feats)
    m = ref_erasing_map(out.cams_a.detach(), LABELS).float()
    x_b, x_c = ref_inputs(feats, m, mode, rectify=False)
    torch.testing.assert_close(seen["head_b"], x_b)
    if mode != "acol":
        torch.testing.assert_close(seen["head_c"], x_c)


@pytest.mark.parametrize("mode", ["seenet", "cam"])
def test_feature_policy_relu_rectifies_every_branch(mode):
    model = tiny_model(mode, feature_policy="relu")
    seen, _ = capture_head_inputs(model)
    out = model(IMAGES, LABELS)
    feats = model.backbone(IMAGES).detach()
    torch.testing.assert_close(seen["head_a"], feats.clamp(min=0))
    if mode == "seenet":
        m = ref_erasing_map(out.cams_a.detach(), LABELS).float()
        x_b, _ = ref_inputs(feats, m, mode)
        torch.testing.assert_close(seen["head_b"], x_b)


def test_default_feature_policy_is_linear():
    assert SeeNet(tiny_backbone(), num_classes=K, hidden_channels=4).feature_policy == "linear"


def test_feature_policies_agree_on_non_negative_features():
    torch.manual_seed(0)
    crelu = tiny_model("seenet")
    crelu.backbone = nn.Sequential(crelu.backbone, nn.ReLU())
    linear = tiny_model("seenet", feature_policy="linear")
    linear.load_state_dict(crelu.state_dict(), strict=False)
    linear.backbone = crelu.backbone
    a, b = crelu(IMAGES, LABELS), linear(IMAGES, LABELS)
    torch.testing.assert_close(a.logits_b, b.logits_b)
    torch.testing.assert_close(a.logits_c, b.logits_c)


def test_test_time_thresholds_drive_attention_maps_only():
    model = tiny_model("seenet", test_delta_high=0.8, test_delta_low=0.0).eval()
    same = tiny_model("seenet", delta_high=0.8, delta_low=0.0).eval()
    same.load_state_dict(model.state_dict())
    torch.testing.assert_close(
        model.attention_maps(IMAGES, LABELS), same.attention_maps(IMAGES, LABELS)
    )
    plain = tiny_model("seenet").eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(
        model.attention_maps(IMAGES, LABELS), plain.attention_maps(IMAGES, LABELS)
    )
    # training uses the training thresholds
    model.train()
    seen, _ = capture_head_inputs(model)
    out = model(IMAGES, LABELS)
    m = ref_erasing_map(out.cams_a.detach(), LABELS).float()
    x_b, _ = ref_inputs(model.backbone(IMAGES).detach(), m, "seenet")
    torch.testing.assert_close(seen["head_b"], x_b)


def test_learning_rate_multipliers():
    model = tiny_model("seenet", head_lr_mult=1.0, bias_lr_mult=2.0)
    lrs = {g["name"]: (g["lr"], g["lr_mult"]) for g in model.param_groups(0.1, 1e-4)}
    assert lrs["backbone"] == (0.1, 1.0)
    assert lrs["backbone_no_decay"] == (pytest.approx(0.2), 2.0)
    assert lrs["heads"] == (0.1, 1.0)
    assert lrs["heads_no_decay"] == (pytest.approx(0.2), 2.0)


def test_head_dropout_and_initialisation():
    model = tiny_model("seenet", head_dropout=0.5)
    assert any(isinstance(m, nn.Dropout) for m in model.head_a.modules())
    model.eval()
    torch.testing.assert_close(model(IMAGES, LABELS).logits_a, model(IMAGES, LABELS).logits_a)
    authors = SeeNet(tiny_backbone(32), num_classes=K, hidden_channels=64)
    default = SeeNet(tiny_backbone(32), num_classes=K, hidden_channels=64, init_std=None)
    w_a = authors.head_a.convs[0].weight
    w_d = default.head_a.convs[0].weight
    assert abs(float(w_a.std()) - 0.01) < 2e-3
    # PyTorch's kaiming-uniform default: std 1 / sqrt(3 * fan_in) = 1 / sqrt(3 * 32 * 9)
    assert abs(float(w_d.std()) - 1 / math.sqrt(3 * 32 * 9)) < 2e-3
    assert torch.any(default.head_a.convs[0].bias != 0)


def test_erase_warmup_trains_s_a_alone_first():
    model = tiny_model("seenet", erase_warmup=2).train()
    for iteration, erasing in ((1, False), (2, False), (3, True)):
        model.set_iteration(iteration)
        out = model(IMAGES, LABELS)
        assert (out.logits_b is not None) == erasing and (out.logits_c is not None) == erasing
        if not erasing:
            torch.testing.assert_close(model.loss(out, LABELS), bce(out.logits_a, LABELS).float())
    model.set_iteration(1)
    assert model.eval()(IMAGES, LABELS).logits_b is not None  # inference always erases
    with pytest.raises(ValueError, match="erase_warmup"):
        tiny_model("seenet", erase_warmup=-1)


@pytest.mark.parametrize("mode", ["seenet", "cam"])
def test_loss_reduction_batch_sums_over_classes(mode):
    model = tiny_model(mode, loss_reduction="batch")
    out = model(IMAGES, LABELS)
    mean = tiny_model(mode)
    mean.load_state_dict(model.state_dict())
    torch.testing.assert_close(model.loss(out, LABELS), K * mean.loss(out, LABELS))
    # Caffe's SigmoidCrossEntropyLoss: summed over the classes, divided by the batch size
    z, y = out.logits_a.double(), LABELS.double()
    s_a = -(y * torch.log(torch.sigmoid(z)) + (1 - y) * torch.log(1 - torch.sigmoid(z)))
    if mode == "cam":
        torch.testing.assert_close(model.loss(out, LABELS).double(), s_a.sum(1).mean())


# ------------------------------------------------------------------------------------------------
# gradients and loss


def test_mask_carries_no_gradient_into_s_a():
    model = tiny_model("seenet")
    out = model(IMAGES, LABELS)
    assert not out.attention.requires_grad
    (out.logits_b.sum() + out.logits_c.sum()).backward()
    # S_A gets nothing from S_B/S_C through the masks
    assert all(p.grad is None or torch.all(p.grad == 0) for p in model.head_a.parameters())


@pytest.mark.parametrize("branch", ["logits_b", "logits_c"])
def test_s_b_and_s_c_reach_the_backbone(branch):
    model = tiny_model("seenet")
    getattr(model(IMAGES, LABELS), branch).sum().backward()
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None for g in grads)
    assert all(torch.any(g != 0) for g in grads)


@pytest.mark.parametrize("mode", ["seenet", "zero", "acol", "cam"])
def test_loss_is_the_sum_of_bce_terms(mode):
    model = tiny_model(mode)
    out = model(IMAGES, LABELS)
    expected = bce(out.logits_a, LABELS)
    if mode != "cam":
        expected = expected + bce(out.logits_b, LABELS)
    if mode in ("seenet", "zero"):
        expected = expected + bce(out.logits_c, torch.zeros_like(LABELS))
    loss = model.loss(out, LABELS.long())
    assert loss.ndim == 0
    torch.testing.assert_close(loss.double(), expected.detach(), rtol=1e-5, atol=1e-6)


def test_labels_required_in_training_only():
    model = tiny_model("seenet").train()
    with pytest.raises(ValueError, match="labels"):
        model(IMAGES)
    model.eval()
    out = model(IMAGES)
    predicted = model.predict_labels(out.logits_a)
    torch.testing.assert_close(out.attention, model(IMAGES, predicted).attention)


def test_training_step_traces_as_one_graph():
    model = tiny_model("seenet")

    def step(x, y):
        return model.loss(model(x, y), y)

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    loss = compiled(IMAGES, LABELS)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    expected = step(IMAGES, LABELS)
    expected.backward()
    torch.testing.assert_close(loss, expected)
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# attention maps


def ref_class_maps(model, images, labels, size):
    """SPEC 1.8 without flip: max of the per-class max-normalised relu maps of S_A and S_B."""
    out = model(images, labels)

    def norm(c):
        c = c.double().clamp(min=0)
        mx = c.amax(dim=(2, 3), keepdim=True)
        return torch.where(mx > 0, c / mx, torch.zeros_like(c))

    fused = torch.maximum(norm(out.cams_a), norm(out.cams_b))
    fused = F.interpolate(fused, size=size, mode="bilinear", align_corners=False)
    return fused * labels[:, :, None, None]


@pytest.mark.parametrize("mode", ["seenet", "acol", "cam"])
def test_attention_maps_reference(mode):
    model = tiny_model(mode).eval()
    with torch.no_grad():
        maps = model.attention_maps(IMAGES, LABELS, size=(20, 24), flip=False)
        assert maps.shape == (4, K, 20, 24) and maps.dtype == torch.float32
        if mode == "cam":
            out = model(IMAGES)
            c = out.cams_a.double().clamp(min=0)
            mx = c.amax(dim=(2, 3), keepdim=True)
            ref = torch.where(mx > 0, c / mx, torch.zeros_like(c))
            ref = F.interpolate(ref, size=(20, 24), mode="bilinear") * LABELS[:, :, None, None]
        else:
            ref = ref_class_maps(model, IMAGES, LABELS, (20, 24))
    torch.testing.assert_close(maps.double(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["seenet", "acol"])
def test_attention_maps_of_one_branch(mode):
    def norm(c):
        c = c.double().clamp(min=0)
        mx = c.amax(dim=(2, 3), keepdim=True)
        return torch.where(mx > 0, c / mx, torch.zeros_like(c))

    model = tiny_model(mode).eval()
    with torch.no_grad():
        out = model(IMAGES, LABELS)
        maps = {b: model.attention_maps(IMAGES, LABELS, flip=False, branch=b).double()
                for b in ("a", "b", "fused")}  # fmt: skip
    for b, cams in (("a", out.cams_a), ("b", out.cams_b)):
        ref = F.interpolate(norm(cams), size=(32, 32), mode="bilinear") * LABELS[:, :, None, None]
        torch.testing.assert_close(maps[b], ref, rtol=1e-5, atol=1e-6)
    at = tuple(out.cams_a.shape[-2:])  # no resizing: the fused maps are the branches' maximum
    with torch.no_grad():
        small = {b: model.attention_maps(IMAGES, LABELS, size=at, flip=False, branch=b)
                 for b in ("a", "b", "fused")}  # fmt: skip
    torch.testing.assert_close(small["fused"], torch.maximum(small["a"], small["b"]))
    assert not torch.allclose(maps["a"], maps["b"])
    with pytest.raises(ValueError, match="branch"):
        model.attention_maps(IMAGES, LABELS, branch="c")
    cam = tiny_model("cam").eval()
    torch.testing.assert_close(cam.attention_maps(IMAGES, LABELS, branch="a"),
                               cam.attention_maps(IMAGES, LABELS))  # fmt: skip
    with pytest.raises(ValueError, match="branch='b' needs an erasing mode"):
        cam.attention_maps(IMAGES, LABELS, branch="b")


def test_attention_maps_range_zero_off_label_and_size():
    model = tiny_model("seenet").eval()
    maps = model.attention_maps(IMAGES, LABELS)
    assert maps.shape == (4, K, 32, 32)
    assert maps.min() >= 0 and maps.max() <= 1
    off = LABELS == 0
    assert torch.all(maps[off] == 0)
    # each labelled class reaches 1 at its peak (before resizing it is exactly 1 somewhere)
    assert torch.all(maps[~off].amax(dim=(1, 2)) > 0.5)
    assert model.attention_maps(IMAGES, LABELS, size=10).shape == (4, K, 10, 10)


def test_attention_maps_flip_symmetry():
    model = tiny_model("seenet").eval()
    x = torch.randn(3, 3, 32, 32)
    y = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 1]])
    maps = model.attention_maps(x, y, flip=True)
    mirrored = model.attention_maps(x.flip(-1), y, flip=True)
    torch.testing.assert_close(mirrored, maps.flip(-1), rtol=0, atol=1e-5)
    # with predicted labels too (averaged over both views, hence the same for the mirror)
    torch.testing.assert_close(
        model.attention_maps(x.flip(-1)), model.attention_maps(x).flip(-1), rtol=0, atol=1e-5
    )
    # and the flip really adds something: without it the maps are not symmetric
    plain = model.attention_maps(x, y, flip=False)
    assert not torch.allclose(model.attention_maps(x.flip(-1), y, flip=False), plain.flip(-1))
    assert torch.all(maps >= plain - 1e-6)  # max over both views


def test_attention_maps_average_over_scales():
    model = tiny_model("seenet").eval()
    x = torch.randn(2, 3, 32, 32)
    y = torch.tensor([[1, 0, 1], [0, 1, 0]])
    one = model.attention_maps(x, y, scales=(1.0,))
    torch.testing.assert_close(one, model.attention_maps(x, y))
    half = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    expected = (one + model.attention_maps(half, y, size=(32, 32))) / 2
    torch.testing.assert_close(model.attention_maps(x, y, scales=(1.0, 0.5)), expected)
    with pytest.raises(ValueError, match="scales"):
        model.attention_maps(x, y, scales=())


def test_attention_maps_predicted_labels_and_batches():
    model = tiny_model("seenet").eval()
    maps = model.attention_maps(IMAGES)  # labels from S_A: at least one class per image
    assert torch.all((maps.amax(dim=(2, 3)) > 0).sum(dim=1) >= 1)
    one_by_one = torch.cat(
        [model.attention_maps(IMAGES[i : i + 1], LABELS[i : i + 1]) for i in range(4)]
    )
    torch.testing.assert_close(model.attention_maps(IMAGES, LABELS), one_by_one, atol=1e-5, rtol=0)
    with torch.no_grad():
        assert not model.attention_maps(IMAGES, LABELS).requires_grad


# ------------------------------------------------------------------------------------------------
# optimiser groups, saving, arguments


def test_param_groups_for_sgd():
    model = tiny_model("seenet")
    groups = model.param_groups(1e-3, 2e-4)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == 1e-3 and by_name["heads"]["lr"] == pytest.approx(1e-2)
    assert by_name["heads_no_decay"]["weight_decay"] == 0.0
    assert by_name["backbone"]["weight_decay"] == 2e-4
    assert all(p.ndim == 1 for p in by_name["heads_no_decay"]["params"])
    opt = torch.optim.SGD(groups, lr=1e-3, momentum=0.9)
    before = model.head_a.classifier.weight.clone()
    model.loss(model(IMAGES, LABELS), LABELS).backward()
    opt.step()
    assert not torch.equal(before, model.head_a.classifier.weight)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_save_pretrained_round_trip(tmp_path, suffix):
    torch.manual_seed(3)
    model = SeeNet("resnet18", num_classes=4, hidden_channels=8, num_convs=2)
    # make the batch-norm statistics non-trivial
    model.train()(torch.randn(2, 3, 64, 64), torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0]]))
    path = tmp_path / f"model{suffix}"
    model.save_pretrained(path)
    again = SeeNet("resnet18", num_classes=4, hidden_channels=8, num_convs=2, pretrained=path)
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(2, 3, 64, 64)
    model.eval(), again.eval()
    assert torch.equal(model.attention_maps(x), again.attention_maps(x))


def test_checkpoint_that_does_not_fit(tmp_path):
    model = tiny_model("seenet")
    path = tmp_path / "m.safetensors"
    model.save_pretrained(path)
    expected = r"shape mismatches: .*head_a\.classifier\.weight: file \(3, 6, 1, 1\) vs model \(4"
    with pytest.raises(ValueError, match=expected):
        SeeNet(tiny_backbone(), num_classes=K + 1, hidden_channels=6, pretrained=path)
    with pytest.raises(ValueError, match=r"unexpected keys: head_b\..*head_c\."):
        SeeNet(tiny_backbone(), num_classes=K, erase_mode="cam", hidden_channels=6, pretrained=path)


def test_backbone_weights_from_timm_state_dict(tmp_path):
    import timm

    full = timm.create_model("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(full.state_dict(), path)
    model = SeeNet("resnet18", num_classes=2, hidden_channels=4, num_convs=1, pretrained=path)
    for k, v in model.backbone.body.state_dict().items():
        assert torch.equal(v, full.state_dict()[k]), k
    x = torch.randn(1, 3, 64, 64)
    full.eval(), model.eval()
    torch.testing.assert_close(model.backbone(x), full.forward_features(x))
    # a plain-module backbone loads its own state dict (or the "backbone."-prefixed one)
    src = tiny_backbone()
    torch.save({f"backbone.{k}": v for k, v in src.state_dict().items()}, tmp_path / "bb.pt")
    plain = SeeNet(tiny_backbone(), num_classes=2, hidden_channels=4, pretrained=tmp_path / "bb.pt")
    for k, v in plain.backbone.state_dict().items():
        assert torch.equal(v, src.state_dict()[k])


def test_backbone_file_that_does_not_fit(tmp_path):
    import timm

    sd = timm.create_model("resnet18").state_dict()
    del sd["layer4.1.bn2.bias"]
    sd["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    sd["decoder.weight"] = torch.zeros(3)
    path = tmp_path / "bad.safetensors"
    save_state_dict_file(sd, path)
    with pytest.raises(ValueError) as info:
        SeeNet("resnet18", num_classes=2, hidden_channels=4, num_convs=1, pretrained=path)
    msg = str(info.value)
    assert "backbone weights" in msg and "bad.safetensors" in msg
    assert "missing keys: layer4.1.bn2.bias" in msg
    assert "unexpected keys: decoder.weight" in msg
    assert "layer1.0.conv1.weight: file (64, 64, 1, 1) vs model (64, 64, 3, 3)" in msg


def test_pretrained_true_offline_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(
        "seenet.models._pretrained._cached_weights_file", lambda cfg: None, raising=True
    )
    with pytest.raises(RuntimeError, match="pretrained='/path/to/resnet18.safetensors'"):
        SeeNet("resnet18", num_classes=2, pretrained=True)
    with pytest.raises(ValueError, match="timm backbone"):
        SeeNet(tiny_backbone(), num_classes=2, pretrained=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(erase_mode="hide"), "erase_mode"),
        (dict(delta_high=0.1, delta_low=0.2), "delta_low"),
        (dict(delta_bg=1.5), "delta_bg"),
        (dict(acol_threshold=-0.1), "acol_threshold"),
        (dict(normalize="l2"), "normalize"),
        (dict(num_classes=0), "num_classes"),
        (dict(feature_index=1), "feature_index"),
        (dict(pretrained=3), "pretrained"),
        (dict(feature_policy="gelu"), "feature_policy"),
        (dict(loss_reduction="sum"), "loss_reduction"),
        (dict(share_bc=1), "share_bc"),
        (dict(head_lr_mult=0), "head_lr_mult"),
        (dict(bias_lr_mult=-1.0), "bias_lr_mult"),
        (dict(test_delta_high=0.1, test_delta_low=0.2), "delta_low"),
        (dict(init_std=-1.0), "init_std"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SeeNet(tiny_backbone(), **{"num_classes": K, "hidden_channels": 4, **kwargs})


def test_bad_backbones_and_inputs():
    with pytest.raises(ValueError, match="backbone"):
        SeeNet("no_such_net_123", num_classes=2)
    with pytest.raises(ValueError, match="backbone"):
        SeeNet(nn.Flatten(), num_classes=2)
    with pytest.raises(ValueError, match="feature_index"):
        SeeNet("resnet18", num_classes=2, feature_index=7)
    model = tiny_model("seenet")
    with pytest.raises(ValueError, match="labels"):
        model(IMAGES, LABELS[:, :2])
    with pytest.raises(ValueError, match="labels"):
        model(IMAGES, LABELS[:3])
    with pytest.raises(ValueError, match="images"):
        model(IMAGES[0], LABELS[:1])
    with pytest.raises(ValueError, match="size"):
        model.eval().attention_maps(IMAGES, LABELS, size=(0, 3))


def test_top_level_names():
    assert seenet.SeeNet is SeeNet


# ------------------------------------------------------------------------------------------------
# learning on a generated image set

SIZE = 48


def _shape_mask(kind: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    if kind == 0:  # square
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    if kind == 1:  # disk
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    # diamond
    return np.abs(yy - cy) + np.abs(xx - cx) <= r * 1.2


COLOURS = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.3, 0.4, 1.0]], dtype=np.float32)


def make_shapes(n: int, rng: np.random.Generator):
    """Noisy images with one or two objects of 3 classes (colour + shape + stripes), masks."""
    images = np.empty((n, 3, SIZE, SIZE), np.float32)
    labels = np.zeros((n, 3), np.float32)
    masks = np.zeros((n, 3, SIZE, SIZE), bool)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for i in range(n):
        img = rng.normal(0.0, 0.25, (3, SIZE, SIZE)).astype(np.float32)
        classes = rng.choice(3, size=rng.integers(1, 3), replace=False)
        occupied = np.zeros((SIZE, SIZE), bool)
        for c in classes:
            for _ in range(20):
                r = rng.uniform(7, 10)
                cy, cx = rng.uniform(r, SIZE - r, size=2)
                m = _shape_mask(int(c), cy, cx, r)
                if not (m & occupied).any():
                    break
            m &= ~occupied
            occupied |= m
            stripes = 0.75 + 0.25 * np.sign(np.sin((yy + xx * (c - 1)) * 0.9))
            img[:, m] = (COLOURS[c][:, None] * stripes[m][None]) + img[:, m] * 0.3
            labels[i, c] = 1
            masks[i, c] = m
        images[i] = img
    return torch.from_numpy(images), torch.from_numpy(labels), torch.from_numpy(masks)


class LittleNet(nn.Module):
    """Stride-4 conv net with batch norm (a stand-in for a pretrained backbone's scaling)."""

    def __init__(self):
        super().__init__()
        layers = []
        for cin, cout, stride in ((3, 16, 2), (16, 32, 2), (32, 32, 1)):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


def mean_iou(maps, masks, labels, threshold=0.5):
    """Mean IoU over the labelled (image, class) pairs of the thresholded maps."""
    ious = []
    for i, c in zip(*torch.nonzero(labels, as_tuple=True)):
        pred = maps[i, c] >= threshold
        gt = masks[i, c]
        ious.append(((pred & gt).sum() / (pred | gt).sum().clamp(min=1)).item())
    return float(np.mean(ious))


@pytest.fixture
def one_thread():
    # tiny convolutions run far faster on one thread, above all next to other test workers
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_learns_to_find_the_objects(one_thread):
    rng = np.random.default_rng(0)
    images, labels, masks = make_shapes(160, rng)
    test_images, test_labels, test_masks = make_shapes(48, rng)
    torch.manual_seed(0)
    model = SeeNet(LittleNet(), num_classes=3, hidden_channels=32, num_convs=1, init_std=0.05)
    opt = torch.optim.SGD(model.param_groups(0.01, 1e-4), lr=0.01, momentum=0.9)
    losses = []
    model.train()
    for step in range(300):
        idx = torch.from_numpy(rng.choice(len(images), 16, replace=False))
        x, y = images[idx], labels[idx]
        if step % 2:
            x = x.flip(-1)
        loss = model.loss(model(x, y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.2 * first, (first, last)

    model.eval()
    with torch.no_grad():
        out = model(test_images, test_labels)
    # S_A's own maps: relu, divided by their maximum, at image size
    cams = out.cams_a.clamp(min=0)
    cams = cams / cams.amax(dim=(2, 3), keepdim=True).clamp(min=1e-12)
    s_a = F.interpolate(cams, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    fused = model.attention_maps(test_images, test_labels)
    uniform = mean_iou(torch.ones_like(fused), test_masks, test_labels)
    for maps in (s_a, fused):
        iou = mean_iou(maps, test_masks, test_labels)
        # the objects are found: far above a map covering everything (~10% IoU), and above
        # the same maps paired with other images
        shuffled = mean_iou(maps.roll(1, dims=0), test_masks, test_labels)
        assert iou > uniform + 0.2, (iou, uniform)
        assert iou > shuffled + 0.2, (iou, shuffled)
    # classification works on held-out images
    with torch.no_grad():
        predicted = model.predict_labels(model(test_images).logits_a)
    assert (predicted == test_labels).float().mean() > 0.9
