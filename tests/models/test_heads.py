"""SelfErasingHead against a hand-written reference of its layers (paper §3.3, SPEC 1.4-1.5)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import seenet
from seenet.functional import c_relu
from seenet.models.heads import HeadOutput, SelfErasingHead


def reference_head(head: SelfErasingHead, x: torch.Tensor, mask=None):
    """The head written out layer by layer with functional convs on its parameters."""
    if mask is not None:
        x = torch.clamp(x, min=0) * mask.to(x.dtype)
    convs = [m for m in head.convs if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        x = torch.clamp(F.conv2d(x, conv.weight, conv.bias, padding=1), min=0)
    cams = F.conv2d(x, head.classifier.weight, head.classifier.bias)
    logits = cams.sum(dim=(2, 3)) / (cams.shape[2] * cams.shape[3])
    return logits, cams


def _randomise(head: SelfErasingHead) -> None:
    # the authors' init (std 0.01, zero bias) gives tiny numbers; larger weights make the
    # comparison sensitive to every layer
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 0.3)


@pytest.mark.parametrize("num_convs", [0, 1, 3])
def test_matches_reference(num_convs):
    head = SelfErasingHead(6, num_classes=4, hidden_channels=5, num_convs=num_convs)
    _randomise(head)
    x = torch.randn(3, 6, 7, 9)
    out = head(x)
    assert isinstance(out, HeadOutput)
    logits, cams = reference_head(head, x)
    assert out.cams.shape == (3, 4, 7, 9) and out.logits.shape == (3, 4)
    torch.testing.assert_close(out.cams, cams)
    torch.testing.assert_close(out.logits, logits)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in head.modules()) == num_convs + 1


def test_mask_is_c_relu_first():
    head = SelfErasingHead(4, num_classes=3, hidden_channels=8, num_convs=2)
    _randomise(head)
    x = torch.randn(2, 4, 5, 5)
    mask = torch.randint(-1, 2, (2, 1, 5, 5), dtype=torch.int8)
    out = head(x, mask)
    via_functional = head(c_relu(x, mask))
    torch.testing.assert_close(out.cams, via_functional.cams)
    torch.testing.assert_close(out.logits, via_functional.logits)
    logits, cams = reference_head(head, x, mask)
    torch.testing.assert_close(out.cams, cams)
    # the mask matters: an all-ones mask is plain ReLU, which differs from the ternary one
    ones = head(x, torch.ones_like(mask))
    assert not torch.allclose(ones.cams, out.cams)
    torch.testing.assert_close(ones.cams, head(torch.relu(x)).cams)


def test_gradient_reaches_features_through_mask():
    head = SelfErasingHead(4, num_classes=2, hidden_channels=8, num_convs=1)
    _randomise(head)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    mask = torch.randint(-1, 2, (2, 1, 5, 5), dtype=torch.int8)
    head(x, mask).logits.sum().backward()
    g = x.grad
    # zero where the mask is 0 or the feature is negative, non-zero somewhere else
    dead = (mask == 0).expand_as(x) | (x <= 0)
    assert torch.all(g[dead] == 0)
    assert torch.any(g[~dead] != 0)


def test_authors_init_and_override():
    head = SelfErasingHead(64, num_classes=20, hidden_channels=128, num_convs=3)
    w = torch.cat([m.weight.flatten() for m in head.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.std().item() - 0.01) < 0.001
    assert abs(w.mean().item()) < 0.001
    assert all(
        torch.all(m.bias == 0) for m in head.modules() if isinstance(m, torch.nn.Conv2d)
    )
    wide = SelfErasingHead(64, num_classes=20, hidden_channels=128, init_std=0.05)
    w2 = torch.cat([m.weight.flatten() for m in wide.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w2.std().item() - 0.05) < 0.005
    wide.reset_parameters(std=0.0)
    assert all(torch.all(p == 0) for p in wide.parameters())


def test_dropout_only_in_training():
    head = SelfErasingHead(4, num_classes=2, hidden_channels=16, num_convs=2, dropout=0.5)
    assert sum(isinstance(m, torch.nn.Dropout) for m in head.modules()) == 2
    _randomise(head)
    x = torch.randn(2, 4, 5, 5)
    head.eval()
    torch.testing.assert_close(head(x).cams, reference_head(head, x)[1])
    head.train()
    assert not torch.allclose(head(x).cams, reference_head(head, x)[1])


def test_top_level_name():
    assert seenet.SelfErasingHead is SelfErasingHead


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_channels=0), "in_channels"),
        (dict(in_channels=4, num_classes=0), "num_classes"),
        (dict(in_channels=4, num_convs=-1), "num_convs"),
        (dict(in_channels=4, hidden_channels=2.5), "hidden_channels"),
        (dict(in_channels=4, dropout=1.0), "dropout"),
        (dict(in_channels=4, init_std=-1.0), "init_std"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SelfErasingHead(**kwargs)


def test_bad_inputs():
    head = SelfErasingHead(4, num_classes=2, hidden_channels=4, num_convs=1)
    with pytest.raises(ValueError, match="features"):
        head(torch.randn(2, 5, 3, 3))
    with pytest.raises(ValueError, match="features"):
        head(torch.randn(4, 3, 3))
    with pytest.raises(ValueError, match="mask"):
        head(torch.randn(2, 4, 3, 3), torch.ones(2, 1, 4, 4))
