from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

import seenet
from seenet._io import save_state_dict_file
from seenet.models import deeplab as deeplab_module
from seenet.models.deeplab import (
    DeepLabLargeFOV,
    deeplab_largefov_resnet101,
    deeplab_largefov_vgg16,
    segment,
    vgg16_to_largefov,
)

VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


@pytest.fixture(scope="module")
def vgg16_state_dict():
    """A randomly initialised timm vgg16 state dict (uniform values: cheap and all distinct)."""
    gen = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in timm.create_model("vgg16").state_dict().items()}
    return {k: torch.rand(s, generator=gen) - 0.5 for k, s in shapes.items()}


def test_vgg16_parameter_count_and_sizes():
    model = deeplab_largefov_vgg16()
    assert sum(p.numel() for p in model.parameters()) == 20_505_429
    out = model.eval()(torch.randn(1, 3, 41, 35))  # a real (small) forward pass
    assert out.shape == (1, 21, 6, 5) and torch.isfinite(out).all()
    with torch.device("meta"):
        meta = DeepLabLargeFOV()
        for h, w in [(321, 321), (224, 224), (97, 50), (513, 385)]:
            out = meta(torch.empty(2, 3, h, w))
            assert out.shape == (2, 21, math.ceil(h / 8), math.ceil(w / 8))
    assert tuple(meta(torch.empty(1, 3, 321, 321, device="meta")).shape[-2:]) == (41, 41)


def test_vgg16_layers_are_spec_item_11():
    model = DeepLabLargeFOV()
    convs = [m for m in model.backbone if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert [c.dilation[0] for c in convs] == [1] * 10 + [2] * 3
    assert [c.padding[0] for c in convs] == [1] * 10 + [2] * 3
    pools = [m for m in model.backbone if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    kinds = [(type(p).__name__, p.kernel_size, p.stride, p.padding) for p in pools]
    assert kinds == [("MaxPool2d", 3, 2, 1)] * 3 + [("MaxPool2d", 3, 1, 1)] * 2 + [
        ("AvgPool2d", 3, 1, 1)
    ]
    head = model.classifier
    fc6 = head.fc6
    assert (fc6.kernel_size, fc6.dilation, fc6.padding) == ((3, 3), (12, 12), (12, 12))
    assert (head.fc6.out_channels, head.fc7.out_channels, head.fc8.out_channels) == (1024, 1024, 21)
    assert head.fc7.kernel_size == head.fc8.kernel_size == (1, 1)
    assert head.drop6.p == head.drop7.p == 0.5
    # fc8: DeepLab's Gaussian initialisation (std 0.01)
    assert abs(head.fc8.weight.std().item() - 0.01) < 0.001 and head.fc8.bias.abs().sum() == 0


def test_vgg16_decimation(vgg16_state_dict):
    vgg = vgg16_state_dict
    sd = vgg16_to_largefov(vgg)
    for i in VGG_CONVS:
        assert torch.equal(sd[f"backbone.{i}.weight"], vgg[f"features.{i}.weight"])
        assert torch.equal(sd[f"backbone.{i}.bias"], vgg[f"features.{i}.bias"])
    fc6, fc7 = sd["classifier.fc6.weight"], sd["classifier.fc7.weight"]
    assert fc6.shape == (1024, 512, 3, 3) and fc7.shape == (1024, 1024, 1, 1)
    w6, w7 = vgg["pre_logits.fc1.weight"], vgg["pre_logits.fc2.weight"]
    # literal: fc6[k, c, i, j] = W6[4k, c, 3i, 3j]; fc7[k, m] = W7[4k, 4m]
    gen = torch.Generator().manual_seed(1)
    for _ in range(200):
        k, c, m = (int(torch.randint(n, (1,), generator=gen)) for n in (1024, 512, 1024))
        i, j = (int(torch.randint(3, (1,), generator=gen)) for _ in range(2))
        assert fc6[k, c, i, j] == w6[4 * k, c, 3 * i, 3 * j]
        assert fc7[k, m, 0, 0] == w7[4 * k, 4 * m, 0, 0]
    assert torch.equal(fc6[:, :, 2, 2], w6[::4, :, 6, 6])  # corner tap 6 is kept
    assert torch.equal(sd["classifier.fc6.bias"], vgg["pre_logits.fc1.bias"][0::4])
    assert torch.equal(sd["classifier.fc7.bias"], vgg["pre_logits.fc2.bias"][0::4])
    assert not any(k.startswith("classifier.fc8") for k in sd)

    # torchvision's layout (linear classifier) gives the same weights
    tv = {k: v for k, v in vgg.items() if k.startswith("features.")}
    tv["classifier.0.weight"] = w6.reshape(4096, -1)
    tv["classifier.0.bias"] = vgg["pre_logits.fc1.bias"]
    tv["classifier.3.weight"] = w7.reshape(4096, 4096)
    tv["classifier.3.bias"] = vgg["pre_logits.fc2.bias"]
    sd_tv = vgg16_to_largefov(tv)
    assert sd_tv.keys() == sd.keys() and all(torch.equal(sd[k], sd_tv[k]) for k in sd)


def test_vgg16_pretrained_true_converts_hub_weights(vgg16_state_dict, monkeypatch):
    asked = []

    def fake_hub(name):
        asked.append(name)
        return vgg16_state_dict

    monkeypatch.setattr(deeplab_module, "hub_state_dict", fake_hub)
    torch.manual_seed(3)
    fc8_before = DeepLabLargeFOV().classifier.fc8.weight.clone()
    torch.manual_seed(3)
    model = DeepLabLargeFOV(pretrained=True)
    assert asked == ["vgg16"]
    assert torch.equal(model.backbone[28].weight, vgg16_state_dict["features.28.weight"])
    assert torch.equal(
        model.classifier.fc6.weight, vgg16_state_dict["pre_logits.fc1.weight"][::4, :, ::3, ::3]
    )
    assert torch.equal(model.classifier.fc8.weight, fc8_before)  # fc8 stays random
    # the converted network computes what VGG16's conv1_1 computes
    x = torch.randn(1, 3, 9, 9)
    vgg = vgg16_state_dict
    ref = F.conv2d(x, vgg["features.0.weight"], vgg["features.0.bias"], padding=1)
    torch.testing.assert_close(model.backbone[0](x), ref)


def test_vgg16_conversion_errors(vgg16_state_dict):
    with pytest.raises(ValueError, match="VGG16"):
        vgg16_to_largefov({"conv1.weight": torch.zeros(1)})
    bad = dict(vgg16_state_dict)
    bad["pre_logits.fc2.weight"] = torch.zeros(10, 10, 1, 1)
    with pytest.raises(ValueError, match="fc7 weight"):
        vgg16_to_largefov(bad)
    bad = {k: v for k, v in vgg16_state_dict.items() if k != "features.5.weight"}
    with pytest.raises(ValueError, match="features.5.weight"):
        DeepLabLargeFOV().load_imagenet(bad)


def test_whole_checkpoint_file(tmp_path):
    model = DeepLabLargeFOV(num_classes=5, backbone="resnet18")
    path = tmp_path / "deeplab.safetensors"
    save_state_dict_file(model.state_dict(), path)
    loaded = DeepLabLargeFOV(num_classes=5, backbone="resnet18", pretrained=path)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    # DDP-prefixed checkpoints load too
    pt = tmp_path / "ddp.pt"
    save_state_dict_file({f"module.{k}": v for k, v in model.state_dict().items()}, pt)
    loaded = DeepLabLargeFOV(num_classes=5, backbone="resnet18", pretrained=pt)
    assert torch.equal(loaded.classifier.fc8.weight, model.classifier.fc8.weight)
    # a checkpoint for another number of classes is refused with the mismatching keys
    with pytest.raises(ValueError, match=r"classifier\.fc8\.weight"):
        DeepLabLargeFOV(num_classes=21, backbone="resnet18", pretrained=path)


def test_backbone_weights_file(tmp_path):
    resnet = timm.create_model("resnet18").state_dict()  # classifier 'fc.*' included
    path = tmp_path / "resnet18.safetensors"
    save_state_dict_file(resnet, path)
    model = DeepLabLargeFOV(num_classes=3, backbone="resnet18", pretrained=path)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, resnet[k]), k
    with pytest.raises(ValueError, match="missing keys"):
        DeepLabLargeFOV(backbone="resnet18").load_imagenet({"conv1.weight": resnet["conv1.weight"]})
    with pytest.raises(ValueError, match="pretrained must be"):
        DeepLabLargeFOV(backbone="resnet18", pretrained=3)
    with pytest.raises(FileNotFoundError):
        DeepLabLargeFOV(backbone="resnet18", pretrained=tmp_path / "nope.pt")


def test_timm_backbone_at_output_stride_8():
    model = DeepLabLargeFOV(num_classes=4, backbone="resnet18").eval()
    out = model(torch.randn(2, 3, 65, 49))
    assert out.shape == (2, 4, 9, 7) and torch.isfinite(out).all()
    assert model.classifier.fc6.in_channels == 512
    with pytest.raises(ValueError, match="output_stride"):
        DeepLabLargeFOV(backbone="vit_tiny_patch16_224")
    with pytest.raises(ValueError, match="timm model name"):
        DeepLabLargeFOV(backbone="not_a_model")
    with pytest.raises(ValueError, match="num_classes"):
        DeepLabLargeFOV(num_classes=0)
    with pytest.raises(ValueError, match="images must have shape"):
        model(torch.randn(3, 16, 16))


def test_feature_index_taps_a_stride_8_level(tmp_path):
    # resnet18's levels have strides 2, 4, 8, 16, 32: level 2 is tapped, the stages after it
    # are gone, and ImageNet weights of the full model load into what is left
    model = DeepLabLargeFOV(num_classes=4, backbone="resnet18", feature_index=2).eval()
    assert model.classifier.fc6.in_channels == 128
    assert not any(k.startswith("body.layer3") for k in model.backbone.state_dict())
    out = model(torch.randn(2, 3, 65, 49))
    assert out.shape == (2, 4, 9, 7) and torch.isfinite(out).all()
    full = timm.create_model("resnet18").state_dict()
    path = tmp_path / "resnet18.safetensors"
    save_state_dict_file(full, path)
    loaded = DeepLabLargeFOV(num_classes=4, backbone="resnet18", feature_index=2, pretrained=path)
    assert torch.equal(loaded.backbone.body.conv1.weight, full["conv1.weight"])
    assert torch.equal(loaded.backbone.body.layer2[0].conv1.weight, full["layer2.0.conv1.weight"])
    # a whole checkpoint of this network loads back
    whole = tmp_path / "whole.safetensors"
    save_state_dict_file(loaded.state_dict(), whole)
    again = DeepLabLargeFOV(num_classes=4, backbone="resnet18", feature_index=2, pretrained=whole)
    assert torch.equal(again.classifier.fc8.weight, loaded.classifier.fc8.weight)
    # a deeper level runs dilated at output stride 8; a stride-4 level is refused
    assert DeepLabLargeFOV(backbone="resnet18", feature_index=3).backbone.reduction == 8
    with pytest.raises(ValueError, match="stride 4"):
        DeepLabLargeFOV(backbone="resnet18", feature_index=1)
    with pytest.raises(ValueError, match="feature_index must be in"):
        DeepLabLargeFOV(backbone="resnet18", feature_index=9)
    with pytest.raises(ValueError, match="timm backbones only"):
        DeepLabLargeFOV(backbone="vgg16", feature_index=2)


def test_registered_resnet101_shapes():
    with torch.device("meta"):
        model = deeplab_largefov_resnet101()
        out = model(torch.empty(1, 3, 321, 321))
    assert out.shape == (1, 21, 41, 41)
    assert model.classifier.fc6.in_channels == 2048
    assert model.classifier.fc6.dilation == (12, 12)


def test_registry_names():
    pytest.importorskip("seenet.models.seenet")  # the registry imports both model modules
    assert {"deeplab_largefov_vgg16", "deeplab_largefov_resnet101"} <= set(seenet.list_models())
    with torch.device("meta"):
        model = seenet.create_model("deeplab_largefov_vgg16", num_classes=3)
    assert isinstance(model, seenet.DeepLabLargeFOV) and model.classifier.fc8.out_channels == 3


def _groups_by_name(model, lr=1e-3, wd=5e-4):
    groups = model.param_groups(lr=lr, weight_decay=wd)
    return {g["name"]: g for g in groups}, groups


def test_param_groups_vgg16():
    model = DeepLabLargeFOV()
    by_name, groups = _groups_by_name(model)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # each once
    fc8 = model.classifier.fc8
    assert [id(p) for p in by_name["new"]["params"]] == [id(fc8.weight)]
    assert [id(p) for p in by_name["new_no_decay"]["params"]] == [id(fc8.bias)]
    assert by_name["new"]["lr"] == pytest.approx(1e-2) and by_name["pretrained"]["lr"] == 1e-3
    assert by_name["new"]["lr_mult"] == 10.0 and by_name["pretrained_no_decay"]["lr_mult"] == 1.0
    assert all(p.ndim == 1 for p in by_name["pretrained_no_decay"]["params"])
    assert by_name["pretrained_no_decay"]["weight_decay"] == 0.0
    assert by_name["pretrained"]["weight_decay"] == 5e-4
    assert any(p is model.classifier.fc6.weight for p in by_name["pretrained"]["params"])
    torch.optim.SGD(groups, lr=1e-3, momentum=0.9)  # accepted as is
    with pytest.raises(ValueError, match="weight_decay"):
        model.param_groups(lr=1e-3, weight_decay=-1.0)


def test_param_groups_timm_backbone_and_frozen():
    model = DeepLabLargeFOV(num_classes=3, backbone="resnet18")
    by_name, _ = _groups_by_name(model)
    new = {id(p) for p in by_name["new"]["params"] + by_name["new_no_decay"]["params"]}
    assert new == {id(p) for p in model.classifier.parameters()}
    bn = model.backbone.bn1
    assert any(p is bn.weight for p in by_name["pretrained_no_decay"]["params"])
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    by_name, _ = _groups_by_name(model)
    assert set(by_name) == {"new", "new_no_decay"}


class _Scaled(nn.Module):
    """A tiny 'segmentation model': 1x1 conv plus a position-dependent term (not flip-invariant)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        ramp = torch.linspace(0, 1, x.shape[-1])
        return self.dropout(self.conv(x)) + ramp


def test_segment_matches_literal_average():
    model = _Scaled()
    model.train()
    image = torch.randn(3, 12, 17)
    got = segment(model, image, scales=(0.5, 1.0, 1.5), flip=True)
    assert model.training  # mode restored
    model.eval()
    want = torch.zeros(4, 12, 17)
    for s in (0.5, 1.0, 1.5):
        size = (round(12 * s), round(17 * s))
        x = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        for flip in (False, True):
            logits = model(x.flip(-1)).flip(-1) if flip else model(x)
            up = F.interpolate(logits, size=(12, 17), mode="bilinear", align_corners=False)
            want += up.softmax(1)[0] / 6
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got.sum(0), torch.ones(12, 17))
    # flip matters for this model; scales=(1,) without flip is the plain forward pass
    assert not torch.allclose(got, segment(model, image, scales=(0.5, 1.0, 1.5), flip=False))
    torch.testing.assert_close(
        segment(model, image[None], scales=(1.0,), flip=False), model(image[None]).softmax(1)
    )


def test_segment_with_deeplab_and_errors():
    model = DeepLabLargeFOV(num_classes=3, backbone="resnet18")
    probs = segment(model, torch.randn(2, 3, 40, 30), scales=(0.75, 1.0))
    assert probs.shape == (2, 3, 40, 30) and not probs.requires_grad
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 40, 30))
    with pytest.raises(ValueError, match="scales"):
        segment(model, torch.randn(3, 8, 8), scales=())
    with pytest.raises(ValueError, match="scales"):
        segment(model, torch.randn(3, 8, 8), scales=(1.0, -0.5))
    with pytest.raises(ValueError, match="image must have shape"):
        segment(model, torch.randn(8, 8))
