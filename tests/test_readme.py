"""The README's usage example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_runs():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102
    maps = namespace["maps"]
    labels = namespace["labels"]
    assert maps.shape == (2, 20, 375, 500)
    assert maps.min() >= 0 and maps.max() <= 1
    off = labels == 0
    assert torch.all(maps[off] == 0)  # classes not in the labels are zero
    assert torch.isfinite(namespace["loss"])


def test_readme_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    first_code = lines.index("```bash")
    assert lines[first_code + 1].startswith("make demo")
    assert lines[first_code + 2].startswith("make test")
