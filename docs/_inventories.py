"""Small intersphinx inventories written at build time, so the docs build without a network.

Sphinx's intersphinx downloads ``objects.inv`` from each project's site; offline the download
fails with a warning that ``-W`` turns into an error, and timm (documented on the Hugging Face hub)
ships no Sphinx inventory at all. The docs therefore read local inventories listing the outside
names they refer to, with their real addresses. To link another outside name, add it below.

Set ``SEENET_DOCS_ONLINE_INVENTORIES=1`` to try the projects' full published inventories first (the
local ones stay as the fallback).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

__all__ = ["INVENTORIES", "intersphinx_mapping"]

# project -> (base address, version, [(name, domain:role, address relative to base)]); in an
# address, "$" stands for the name.
INVENTORIES: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "python": (
        "https://docs.python.org/3/",
        "3",
        [
            ("int", "py:class", "library/functions.html#int"),
            ("float", "py:class", "library/functions.html#float"),
            ("bool", "py:class", "library/functions.html#bool"),
            ("str", "py:class", "library/stdtypes.html#str"),
            ("tuple", "py:class", "library/stdtypes.html#tuple"),
            ("list", "py:class", "library/stdtypes.html#list"),
            ("dict", "py:class", "library/stdtypes.html#dict"),
            ("None", "py:data", "library/constants.html#None"),
            ("ValueError", "py:exception", "library/exceptions.html#ValueError"),
            ("pathlib.Path", "py:class", "library/pathlib.html#pathlib.Path"),
            ("os.PathLike", "py:class", "library/os.html#os.PathLike"),
            ("collections.abc.Sequence", "py:class", "library/collections.abc.html#$"),
            ("collections.abc.Iterable", "py:class", "library/collections.abc.html#$"),
            ("typing.Any", "py:data", "library/typing.html#typing.Any"),
        ],
    ),
    "numpy": (
        "https://numpy.org/doc/stable/",
        "2",
        [
            ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#$"),
            ("numpy.uint8", "py:class", "reference/arrays.scalars.html#numpy.uint8"),
            ("numpy.savez_compressed", "py:function", "reference/generated/$.html#$"),
        ],
    ),
    "torch": (
        "https://docs.pytorch.org/docs/stable/",
        "2",
        [
            ("torch.Tensor", "py:class", "tensors.html#torch.Tensor"),
            ("torch.dtype", "py:class", "tensor_attributes.html#torch.dtype"),
            ("torch.device", "py:class", "tensor_attributes.html#torch.device"),
            ("torch.Generator", "py:class", "generated/$.html#$"),
            ("torch.nn.Module", "py:class", "generated/$.html#$"),
            ("torch.nn.ReLU", "py:class", "generated/$.html#$"),
            ("torch.nn.Conv2d", "py:class", "generated/$.html#$"),
            ("torch.nn.functional.relu", "py:function", "generated/$.html#$"),
            ("torch.nn.functional.interpolate", "py:function", "generated/$.html#$"),
            (
                "torch.nn.functional.binary_cross_entropy_with_logits",
                "py:function",
                "generated/$.html#$",
            ),
            ("torch.nn.parallel.DistributedDataParallel", "py:class", "generated/$.html#$"),
            ("torch.utils.data.Dataset", "py:class", "data.html#$"),
            ("torch.utils.data.DataLoader", "py:class", "data.html#$"),
            ("torch.distributed.init_process_group", "py:function", "distributed.html#$"),
            ("torch.compile", "py:function", "generated/$.html#$"),
            ("torch.no_grad", "py:class", "generated/$.html#$"),
            ("torch.load", "py:function", "generated/$.html#$"),
            ("torch.save", "py:function", "generated/$.html#$"),
            ("torch.optim.SGD", "py:class", "generated/$.html#$"),
            ("torch.library.custom_op", "py:function", "library.html#$"),
            ("torch.library.triton_op", "py:function", "library.html#$"),
            ("torch.library.register_fake", "py:function", "library.html#$"),
            ("torch.library.register_autograd", "py:function", "library.html#$"),
            ("torch.library.opcheck", "py:function", "library.html#$"),
            ("torch.autograd.gradcheck", "py:function", "generated/$.html#$"),
        ],
    ),
    "timm": (
        # timm's documentation is built with Hugging Face's doc-builder, which publishes no Sphinx
        # inventory: this local one is the only one there is.
        "https://huggingface.co/docs/timm/",
        "1",
        [
            ("timm.create_model", "py:function", "reference/models#$"),
            ("timm.list_models", "py:function", "reference/models#$"),
            ("timm.list_pretrained", "py:function", "reference/models#$"),
        ],
    ),
}


def _write(path: Path, project: str, version: str, entries: list[tuple[str, str, str]]) -> None:
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    lines = "".join(
        f"{name} {role} 1 {uri.replace('$', name)} -\n" for name, role, uri in entries
    )
    data = header.encode() + zlib.compress(lines.encode())
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def intersphinx_mapping(out_dir: Path) -> dict[str, tuple[str, tuple[str | None, ...]]]:
    """Write the local inventories into ``out_dir`` and return Sphinx's ``intersphinx_mapping``."""
    online = os.environ.get("SEENET_DOCS_ONLINE_INVENTORIES", "") not in ("", "0")
    mapping: dict[str, tuple[str, tuple[str | None, ...]]] = {}
    for project, (base, version, entries) in INVENTORIES.items():
        local = out_dir / f"{project}.inv"
        _write(local, project, version, entries)
        # intersphinx stops at the first location that loads; a local file always loads.
        locations = (None, str(local)) if online and project != "timm" else (str(local),)
        mapping[project] = (base, locations)
    return mapping
