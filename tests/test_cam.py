from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
import torch.nn as nn

from seenet.cam import CAM, GradCAM, class_maps, from_pytorch_grad_cam, from_torchcam

K = 4


class TinyNet(nn.Module):
    """Two convolutions, global average pooling, a linear classifier."""

    def __init__(self, k: int = K):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 6, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, k)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyNet().eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(3, 3, 12, 10, generator=g)
    labels = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 0]])
    return images, labels


def features_of(model, layer, images):
    """The layer's output, captured by a plain hook, still in the graph.

    A copy flows on, so that an in-place layer after it (``ReLU(inplace=True)``) cannot change
    the captured tensor: ``a`` is the layer's output as the definitions mean it.
    """
    store = {}

    def hook(module, inputs, output):
        store["a"] = output
        return output.clone()

    handle = layer.register_forward_hook(hook)
    try:
        logits = model(images)
    finally:
        handle.remove()
    return logits, store["a"]


def all_hooks(model):
    return [h for m in model.modules() for h in (*m._forward_hooks, *m._forward_pre_hooks)]


# ----------------------------------------------------------------------------- definitions


@pytest.mark.parametrize("layer", ["features", "features.2"])  # .2: an in-place ReLU follows
def test_cam_equals_the_definition(model, batch, layer):
    images, labels = batch
    got = CAM(model, layer)(images, labels)
    with torch.no_grad():
        _, a = features_of(model, model.get_submodule(layer), images)
    w = model.fc.weight.detach()
    n, c, h, wd = a.shape
    want = torch.zeros(n, K, h, wd)
    for i in range(n):
        for k in range(K):
            if not labels[i, k]:
                continue
            for y in range(h):
                for x in range(wd):
                    want[i, k, y, x] = sum(float(w[k, j]) * float(a[i, j, y, x]) for j in range(c))
    assert got.dtype == torch.float32 and got.shape == (n, K, h, wd)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_gradcam_equals_the_definition(model, batch):
    images, labels = batch
    layer = model.features[2]  # the conv before the in-place ReLU: Grad-CAM anywhere
    got = GradCAM(model, layer)(images, labels)
    logits, a = features_of(model, layer, images)
    n, c, h, wd = a.shape
    want = torch.zeros(n, K, h, wd)
    for i in range(n):
        for k in range(K):
            if not labels[i, k]:
                continue
            (g,) = torch.autograd.grad(logits[i, k], a, retain_graph=True)
            alpha = [float(g[i, j].mean()) for j in range(c)]
            m = sum(alpha[j] * a[i, j].detach() for j in range(c))
            want[i, k] = torch.relu(m)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert bool(got[labels.bool()].flatten(1).amax(1).gt(0).all())  # not trivially zero


def test_gradcam_at_last_features_equals_cam_for_gap_linear(model, batch):
    """For GAP + linear, d y_c / d A_k(i, j) = w[c, k] / (h w): Grad-CAM = relu(CAM) / (h w)."""
    images, labels = batch
    cam = CAM(model, "features")(images, labels)
    grad_cam = GradCAM(model, "features")(images, labels)
    hw = cam.shape[-1] * cam.shape[-2]
    torch.testing.assert_close(grad_cam * hw, torch.relu(cam), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        class_maps(GradCAM(model, "features"), images, labels),
        class_maps(CAM(model, "features"), images, labels),
        rtol=1e-4,
        atol=1e-5,
    )


def test_timm_resnet18_default_fc_and_identity():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=5).eval()
    images = torch.randn(2, 3, 64, 64)
    labels = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0]])
    cam = CAM(model, "layer4")
    assert cam.fc is model.fc  # from get_classifier()
    raw = cam(images, labels)
    grad = GradCAM(model, model.layer4)(images, labels)
    assert raw.shape == grad.shape == (2, 5, 2, 2)
    torch.testing.assert_close(grad * 4, torch.relu(raw), rtol=1e-4, atol=1e-5)
    assert all_hooks(model) == []


# ----------------------------------------------------------------------------- side effects


@pytest.mark.parametrize("extractor", [CAM, GradCAM])
@pytest.mark.parametrize("training", [False, True])
def test_no_hooks_grads_or_mode_changes(extractor, training, batch):
    images, labels = batch
    model = TinyNet().train(training)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)  # an earlier backward's gradient
    modes = [m.training for m in model.modules()]
    extractor(model, "features")(images, labels)
    assert all_hooks(model) == []
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(model.fc.weight.grad, torch.ones_like(model.fc.weight))
    assert all(p.grad is None for name, p in model.named_parameters() if name != "fc.weight")
    # the hook is removed when the forward pass fails too
    with pytest.raises(RuntimeError):
        extractor(model, "features")(torch.randn(1, 2, 8, 8), labels[:1])
    assert all_hooks(model) == []


def test_gradcam_with_frozen_parameters_and_under_no_grad(model, batch):
    images, labels = batch
    want = GradCAM(model, "features")(images, labels)
    model.requires_grad_(False)
    with torch.no_grad():
        got = GradCAM(model, "features")(images, labels)
    torch.testing.assert_close(got, want)


# ----------------------------------------------------------------------------- class_maps


@pytest.mark.parametrize("extractor", [CAM, GradCAM])
def test_class_maps_conventions(extractor, model, batch):
    images, labels = batch
    ext = extractor(model, "features")
    maps = class_maps(ext, images, labels, size=(20, 16))
    assert maps.dtype == torch.float32 and maps.shape == (3, K, 20, 16)
    assert not maps.requires_grad
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    assert bool(maps[~labels.bool()].eq(0).all())  # unlabelled classes are zero
    # flip symmetry: the maps of the mirrored images are the mirrored maps
    flipped = class_maps(ext, images.flip(-1), labels, size=(20, 16))
    torch.testing.assert_close(flipped, maps.flip(-1), rtol=0, atol=1e-6)
    # without flip: relu, divide by the maximum, resize
    raw = ext(images, labels).clamp(min=0)
    peak = raw.amax(dim=(2, 3), keepdim=True)
    want = torch.where(peak > 0, raw / peak.clamp(min=1e-30), torch.zeros_like(raw))
    want = nn.functional.interpolate(want, size=(20, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(class_maps(ext, images, labels, (20, 16), flip=False), want)


def test_class_maps_flip_is_the_maximum_of_the_two_views(model, batch):
    images, labels = batch
    ext = CAM(model, "features")
    # at the features' size, before the resize, flip fusion is the maximum of the two views
    small = images.shape[-2] // 2, images.shape[-1] // 2
    fused = class_maps(ext, images, labels, size=small)
    a_small = class_maps(ext, images, labels, size=small, flip=False)
    b_small = class_maps(ext, images.flip(-1), labels, size=small, flip=False).flip(-1)
    torch.testing.assert_close(fused, torch.maximum(a_small, b_small), rtol=0, atol=0)


def test_class_maps_multiscale_is_the_mean_of_the_scales(model, batch):
    images, labels = batch
    ext = GradCAM(model, "features")
    both = class_maps(ext, images, labels, scales=(1.0, 0.5, 1.5))
    each = [class_maps(ext, images, labels, scales=(s,)) for s in (1.0, 0.5, 1.5)]
    torch.testing.assert_close(both, sum(each) / 3)
    half = nn.functional.interpolate(images, size=(6, 5), mode="bilinear", align_corners=False)
    torch.testing.assert_close(each[1], class_maps(ext, half, labels, size=(12, 10)))


def test_class_maps_equals_seenet_attention_maps_in_cam_mode():
    from seenet.models.seenet import SeeNet

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
    model = SeeNet(backbone, num_classes=K, erase_mode="cam", hidden_channels=8, num_convs=2)
    with torch.no_grad():
        model.head_a.classifier.bias.normal_()  # the authors' init leaves it zero
    model.eval()
    images, labels = torch.randn(2, 3, 16, 14), torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0]])
    ext = CAM(model, "head_a.convs", fc="head_a.classifier", bias=True)
    torch.testing.assert_close(
        class_maps(ext, images, labels, size=(20, 18)),
        model.attention_maps(images, labels, size=(20, 18)),
    )


def test_class_maps_all_zero_maps_stay_zero(batch):
    images, labels = batch

    def zeros(x, lab):
        return torch.zeros(x.shape[0], lab.shape[1], 3, 3)

    assert bool(class_maps(zeros, images, labels).eq(0).all())


def test_errors(model, batch):
    images, labels = batch
    with pytest.raises(ValueError, match="target_layer 'nope' is not a submodule"):
        CAM(model, "nope")
    with pytest.raises(ValueError, match="target_layer must be a submodule"):
        GradCAM(model, nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="no nn.Linear"):
        CAM(nn.Sequential(nn.Conv2d(3, 3, 1)), "0")
    with pytest.raises(ValueError, match="fc must be an nn.Linear or a 1x1"):
        CAM(model, "features", fc="features.0")
    with pytest.raises(ValueError, match="has 8 channels but fc expects 6"):
        CAM(model, "features.1")(images, labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        CAM(model, "features")(images, labels[:, :3])
    with pytest.raises(ValueError, match="one row per image"):
        GradCAM(model, "features")(images, labels[:2])
    with pytest.raises(ValueError, match="must output \\(N, C, h, w\\)"):
        GradCAM(model, "fc")(images, labels)
    with pytest.raises(ValueError, match="size must be"):
        class_maps(CAM(model, "features"), images, labels, size=(0, 3))
    with pytest.raises(ValueError, match="scales must"):
        class_maps(CAM(model, "features"), images, labels, scales=())
    with pytest.raises(ValueError, match="flip must be a bool"):
        class_maps(CAM(model, "features"), images, labels, flip=1)
    with pytest.raises(ValueError, match="extractor must return raw maps"):
        class_maps(lambda x, lab: x, images, labels)

    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Conv2d(3, 3, 1)
            self.fc = nn.Linear(3, K)

        def forward(self, x):
            return self.fc(self.block(self.block(x)).mean((2, 3)))

    with pytest.raises(ValueError, match="exactly once"):
        GradCAM(Reuse(), "block")(images, labels)


# ----------------------------------------------------------------------------- adapters


def test_torchcam_adapter_equals_torchcam(model, batch):
    methods = pytest.importorskip("torchcam.methods", reason="torchcam is not installed")
    images, labels = batch
    with methods.GradCAM(model, "features") as extractor:
        got = from_torchcam(extractor)(images, labels)
        want = torch.zeros_like(got)
        for i in range(len(images)):
            for k in labels[i].nonzero().flatten().tolist():
                scores = model(images[i : i + 1])
                want[i, k] = extractor(class_idx=k, scores=scores, normalized=False)[0][0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        got, GradCAM(model, "features")(images, labels), rtol=1e-4, atol=1e-6
    )
    assert all_hooks(model) == []
    assert all(p.grad is None for p in model.parameters())
    # the activation-based CAM of torchcam is our CAM; Grad-CAM++ runs through class_maps
    with methods.CAM(model, "features", fc_layer="fc") as extractor:
        torch.testing.assert_close(
            from_torchcam(extractor)(images, labels), CAM(model, "features")(images, labels)
        )
    with methods.GradCAMpp(model, "features") as extractor:
        maps = class_maps(from_torchcam(extractor), images, labels)
    assert maps.shape == (3, K, 12, 10) and bool(maps[~labels.bool()].eq(0).all())


def test_pytorch_grad_cam_adapter_equals_grad_cam(model, batch):
    pgc = pytest.importorskip("pytorch_grad_cam", reason="grad-cam is not installed")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    images, labels = batch
    model.fc.weight.grad = torch.full_like(model.fc.weight, 3.0)
    with pgc.GradCAM(model=model, target_layers=[model.features]) as cam:
        got = from_pytorch_grad_cam(cam)(images, labels)
        assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 3.0))
        assert model.features[0].weight.grad is None
        want = torch.zeros_like(got)
        for i in range(len(images)):
            for k in labels[i].nonzero().flatten().tolist():
                m = cam(input_tensor=images[i : i + 1], targets=[ClassifierOutputTarget(k)])
                want[i, k] = torch.from_numpy(m[0])
        maps = class_maps(from_pytorch_grad_cam(cam), images, labels)
    assert got.shape == (3, K, 12, 10)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert bool(maps[~labels.bool()].eq(0).all()) and float(maps.max()) <= 1.0


def test_adapters_name_the_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam.utils.model_targets", None)
    with pytest.raises(ImportError, match=r"'grad-cam'.*seenet\[cam\]"):
        from_pytorch_grad_cam(object())
    monkeypatch.setitem(sys.modules, "torchcam", None)
    with pytest.raises(ImportError, match=r"'torchcam'.*seenet\[cam\]"):
        from_torchcam(object())


@pytest.mark.skipif(
    importlib.util.find_spec("torchcam") is None, reason="torchcam is not installed"
)
def test_adapters_reject_other_objects():
    with pytest.raises(ValueError, match="torchcam extractor"):
        from_torchcam(object())
