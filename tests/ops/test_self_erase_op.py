"""The registered op: opcheck, torch.compile, backend dispatch."""

from __future__ import annotations

import pytest
import torch

from seenet.functional import self_erase
from seenet.ops import available_backends, resolve_backend
from seenet.ops._self_erase import self_erase_op


@pytest.mark.parametrize("rectify", [True, False])
@pytest.mark.parametrize("zero_background", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck(zero_background, channels_last, rectify):
    f = torch.randn(2, 4, 5, 6)
    if channels_last:
        f = f.to(memory_format=torch.channels_last)
    f.requires_grad_()
    m = torch.rand(2, 1, 5, 6)
    torch.library.opcheck(
        self_erase_op, (f, m, 0.7, 0.05, 0.375, zero_background, rectify, "reference")
    )


def _eager(f, m):
    return self_erase(f, m)


def test_compile_aot_eager_fullgraph_forward_backward():
    f = torch.randn(2, 3, 5, 5, requires_grad=True)
    m = torch.rand(2, 1, 5, 5)
    m[1] = 0  # an image without information must not need a host sync either
    compiled = torch.compile(_eager, fullgraph=True, backend="aot_eager")
    x_b, x_c = compiled(f, m)
    (x_b.sum() + x_c.sum()).backward()
    g = f.grad.clone()
    f.grad = None
    y_b, y_c = _eager(f, m)
    (y_b.sum() + y_c.sum()).backward()
    assert torch.equal(x_b, y_b) and torch.equal(x_c, y_c) and torch.equal(g, f.grad)


def test_compile_inductor_fullgraph():
    """The project's single inductor compile test (a cold compile takes tens of seconds)."""
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def step(x, m):
        x_b, x_c = self_erase(conv(x), m)
        return x_b.mean() + x_c.mean()

    x = torch.randn(2, 3, 6, 6)
    m = torch.rand(2, 1, 6, 6)
    compiled = torch.compile(step, fullgraph=True)
    loss = compiled(x, m)
    loss.backward()
    grads = [p.grad.clone() for p in conv.parameters()]
    conv.zero_grad()
    want = step(x, m)
    want.backward()
    torch.testing.assert_close(loss, want)
    for g, p in zip(grads, conv.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_resolve_backend(monkeypatch):
    cpu = torch.zeros(1)
    monkeypatch.delenv("SEENET_BACKEND", raising=False)
    assert resolve_backend("auto", cpu) == "reference"
    assert resolve_backend("reference", cpu) == "reference"
    monkeypatch.setenv("SEENET_BACKEND", "reference")
    assert resolve_backend("auto", cpu) == "reference"
    monkeypatch.setenv("SEENET_BACKEND", "bogus")
    with pytest.raises(ValueError, match="SEENET_BACKEND"):
        resolve_backend("auto", cpu)
    monkeypatch.delenv("SEENET_BACKEND")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("fast", cpu)
    assert "reference" in available_backends()


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="triton"):
        self_erase(torch.randn(1, 1, 2, 2), torch.rand(1, 1, 2, 2), backend="triton")


def test_missing_triton_falls_back_silently(monkeypatch):
    import seenet.ops._dispatch as dispatch

    monkeypatch.setattr(dispatch, "_triton_module", None)
    monkeypatch.setattr(dispatch, "_triton_error", ImportError("no triton"))
    monkeypatch.delenv("SEENET_BACKEND", raising=False)
    assert dispatch.available_backends() == ["reference"]
    x_b, _ = self_erase(torch.randn(1, 2, 3, 3), torch.rand(1, 1, 3, 3))  # "auto": no error
    assert x_b.shape == (1, 2, 3, 3)
    with pytest.raises(ValueError, match="failed to import"):
        resolve_backend("triton", torch.zeros(1))
