from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "seenet_tests_tiny_voc", Path(__file__).parents[1] / "tiny_voc.py"
)
tiny_voc_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_voc_module)


@pytest.fixture
def tiny_voc(tmp_path):
    """A tiny VOC2012 tree (6 train_aug, 3 val images of 40x48 px)."""
    return tiny_voc_module.make_tiny_voc(tmp_path)
