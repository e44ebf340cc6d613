"""Shared test set-up: offline hub, deterministic seeds, CUDA marker."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

# Under pytest-xdist each worker gets one torch thread: two workers with two threads each on a
# 2-core machine oversubscribe the CPU and small convolutions slow down many times over.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

settings.register_profile("seenet", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("seenet")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def hide_package(monkeypatch):
    """``hide_package("scipy")``: importing it or its submodules fails, as on an install without it.

    Undone after the test, with the modules already imported.
    """
    import builtins
    import sys

    real_import = builtins.__import__
    hidden: list[str] = []

    def fake_import(name, *args, **kwargs):
        if any(name == p or name.startswith(p + ".") for p in hidden):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)

    def hide(package: str) -> None:
        hidden.append(package)
        for key in [k for k in sys.modules if k == package or k.startswith(package + ".")]:
            monkeypatch.delitem(sys.modules, key)

    return hide


@pytest.fixture
def tiny_voc(tmp_path):
    """A tiny VOC2012 tree (6 train_aug, 3 val images of 40x48 px), see ``tests/tiny_voc.py``."""
    from tiny_voc import make_tiny_voc

    return make_tiny_voc(tmp_path)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
