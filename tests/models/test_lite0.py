from __future__ import annotations

import pytest
import torch

import seenet
from seenet._io import load_state_dict_file, save_state_dict_file
from seenet.models._lite0 import lite0_state_dict, lite0_weights_file

timm = pytest.importorskip("timm")
skimage_data = pytest.importorskip("skimage.data")


def test_imagenet_weights_recognise_a_cat():
    model = timm.create_model("efficientnet_lite0")
    model.load_state_dict(lite0_state_dict(), strict=True)
    model.eval()
    image = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1)[None].float() / 255
    image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear")
    image = (image - 0.5) / 0.5
    with torch.no_grad():
        top = model(image).softmax(1).topk(3).indices[0].tolist()
    assert set(top) & {281, 282, 283, 284, 285}  # ImageNet's domestic cat classes
    # randomly initialised weights do not
    torch.manual_seed(0)
    random = timm.create_model("efficientnet_lite0").eval()
    with torch.no_grad():
        assert int(random(image).argmax()) not in range(281, 286)


def test_weights_file_and_registered_models(tmp_path):
    path = lite0_weights_file(tmp_path / "w.safetensors")
    keys = set(load_state_dict_file(path))
    assert not any(k.startswith(("classifier.", "conv_head.", "bn2.")) for k in keys)
    model = seenet.create_model(
        "seenet_efficientnet_lite0", pretrained=True, num_classes=3, hidden_channels=8,
        num_convs=1, feature_index=2,
    )  # fmt: skip
    reference = lite0_state_dict()
    own = model.backbone.body.state_dict()
    stem = [k for k in own if k.endswith("conv_stem.weight")][0]
    torch.testing.assert_close(own[stem], reference["conv_stem.weight"])
    deeplab = seenet.create_model(
        "deeplab_largefov_efficientnet_lite0", pretrained=True, hidden_channels=8
    )
    assert deeplab(torch.zeros(1, 3, 64, 64)).shape == (1, 21, 8, 8)


def test_backbone_from_a_trained_checkpoint(tmp_path):
    kwargs = dict(num_classes=3, hidden_channels=8, num_convs=1, feature_index=2)
    source = seenet.create_model("seenet_efficientnet_lite0", erase_mode="cam", **kwargs)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.5)
    ckpt = tmp_path / "cam.safetensors"
    save_state_dict_file(source.state_dict(), ckpt)
    model = seenet.create_model(
        "seenet_efficientnet_lite0", erase_mode="seenet", backbone_from=ckpt, **kwargs
    )
    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)
    assert not torch.equal(model.head_a.state_dict()["classifier.weight"],
                           source.head_a.state_dict()["classifier.weight"])  # fmt: skip
    empty = tmp_path / "empty.safetensors"
    save_state_dict_file({"other": torch.zeros(1)}, empty)
    with pytest.raises(ValueError, match="backbone_from"):
        seenet.create_model("seenet_efficientnet_lite0", backbone_from=empty, **kwargs)
