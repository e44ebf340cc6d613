"""The model registry: SeeNet names, arguments passed through, pretrained files."""

from __future__ import annotations

import pytest
import torch

import seenet
from seenet.models.seenet import SeeNet

SEENET_NAMES = ["seenet_resnet101", "seenet_resnet50", "seenet_vgg16"]


def test_list_models():
    names = seenet.list_models()
    assert set(SEENET_NAMES) <= set(names)
    assert names == sorted(names)
    assert seenet.list_models("seenet_*") == ["seenet_efficientnet_lite0", *SEENET_NAMES]
    assert seenet.list_models("deeplab_*") == [
        "deeplab_largefov",
        "deeplab_largefov_efficientnet_lite0",
        "deeplab_largefov_resnet101",
        "deeplab_largefov_vgg16",
    ]


def test_generic_models_take_any_backbone():
    model = seenet.create_model("seenet", backbone="resnet18", num_classes=3, hidden_channels=8)
    assert type(model).__name__ == "SeeNet" and model.backbone.model_name == "resnet18"
    deeplab = seenet.create_model("deeplab_largefov", backbone="resnet18", hidden_channels=8)
    assert type(deeplab).__name__ == "DeepLabLargeFOV"


@pytest.mark.parametrize(
    "name, timm_name, channels, stride",
    [
        ("seenet_vgg16", "vgg16", 512, 16),
        ("seenet_resnet50", "resnet50", 2048, 32),
        ("seenet_resnet101", "resnet101", 2048, 32),
    ],
)
def test_factories_build_the_named_backbone(name, timm_name, channels, stride):
    # on the meta device: structure only, no memory or time spent on weights
    with torch.device("meta"):
        model = seenet.create_model(name, num_classes=7)
    assert isinstance(model, SeeNet)
    assert model.backbone.model_name == timm_name
    assert model.feature_channels == channels and model.backbone.reduction == stride
    assert model.head_a.classifier.out_channels == 7
    # the paper's heads: 3 x (3x3 conv, 512) + 1x1 conv to K
    convs = [m for m in model.head_b.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [512, 512, 512, 7]


def test_kwargs_reach_the_model():
    model = seenet.create_model(
        "seenet_resnet50", num_classes=4, erase_mode="acol", hidden_channels=16, num_convs=1
    )
    assert model.head_b is not None and model.head_c is None
    out = model.eval()(torch.randn(1, 3, 64, 64), torch.tensor([[0, 1, 0, 0]]))
    assert out.logits_a.shape == (1, 4) and out.cams_b.shape == (1, 4, 2, 2)


def test_pretrained_file_through_the_registry(tmp_path):
    model = seenet.create_model("seenet_resnet50", num_classes=3, hidden_channels=8, num_convs=1)
    path = tmp_path / "seenet_resnet50.safetensors"
    model.save_pretrained(path)
    again = seenet.create_model(
        "seenet_resnet50", pretrained=str(path), num_classes=3, hidden_channels=8, num_convs=1
    )
    a, b = model.state_dict(), again.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_errors():
    with pytest.raises(ValueError, match="unknown model name"):
        seenet.create_model("seenet_alexnet")
    with pytest.raises(ValueError, match="backbone"):
        seenet.create_model("seenet_vgg16", backbone="resnet18")
