"""The documentation's own checks (the full build runs in ``make docs``).

- Every public name of the package has an entry in the API reference.
- The local intersphinx inventories that let the docs build offline load with Sphinx's own reader
  and point at the right pages.
- Every gallery script compiles and carries a title, and every tutorial of the index exists.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

import seenet

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GALLERY = ROOT / "examples" / "gallery"


def _autosummary_entries(text: str) -> set[str]:
    """Names listed under the ``.. autosummary::`` directives of an rst page."""
    entries: set[str] = set()
    for block in re.split(r"\n\.\. autosummary::\n", text)[1:]:
        for line in block.splitlines()[1:]:
            if line and not line.startswith(" "):
                break  # end of the directive
            item = line.strip()
            if item and not item.startswith(":"):
                entries.add(item)
    return entries


def test_api_reference_lists_every_public_name():
    entries = _autosummary_entries((DOCS / "api.rst").read_text(encoding="utf-8"))
    assert "functional.self_erase" in entries  # the parser reads the page
    missing = []
    for name in seenet.__all__:
        if name == "__version__":
            continue
        if seenet._LAZY[name] is None:  # a submodule: the module or some of its names
            if name not in entries and not any(e.startswith(f"{name}.") for e in entries):
                missing.append(name)
        elif name not in entries:
            missing.append(name)
    assert not missing, f"public names without an API entry: {missing}"


def test_api_reference_entries_import():
    entries = _autosummary_entries((DOCS / "api.rst").read_text(encoding="utf-8"))
    for entry in sorted(entries):
        obj = seenet
        for part in entry.split("."):
            if not hasattr(obj, part):  # a submodule not imported by its package
                importlib.import_module(f"{obj.__name__}.{part}")
            obj = getattr(obj, part)
        assert obj.__doc__, f"seenet.{entry} has no docstring"


def _load_inventories_module():
    spec = importlib.util.spec_from_file_location("_docs_inventories", DOCS / "_inventories.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_local_inventories_load_and_point_at_the_right_pages(tmp_path, monkeypatch):
    inventory = pytest.importorskip("sphinx.util.inventory")
    monkeypatch.delenv("SEENET_DOCS_ONLINE_INVENTORIES", raising=False)
    module = _load_inventories_module()
    mapping = module.intersphinx_mapping(tmp_path)
    assert set(mapping) == {"python", "numpy", "torch", "timm"}
    for project, (base, locations) in mapping.items():
        assert locations == (str(tmp_path / f"{project}.inv"),)  # offline: the local file only
        data = Path(locations[0]).read_bytes()
        inv = inventory.InventoryFile.loads(data, uri=base)
        names = {}
        for role, items in inv.data.items():
            for name, item in items.items():
                uri = item.uri if hasattr(item, "uri") else item[2]
                names[name] = (role, uri)
        expected = module.INVENTORIES[project][2]
        assert len(names) == len(expected)
        for name, role, rel in expected:
            got_role, uri = names[name]
            assert got_role == role
            assert uri == base + rel.replace("$", name)
            assert "$" not in uri and " " not in uri
    torch_names = {n: u for n, _, u in module.INVENTORIES["torch"][2]}
    assert "torch.Tensor" in torch_names and "torch.compile" in torch_names
    # writing again leaves an identical file alone
    before = (tmp_path / "torch.inv").stat().st_mtime_ns
    module.intersphinx_mapping(tmp_path)
    assert (tmp_path / "torch.inv").stat().st_mtime_ns == before


def test_online_inventories_keep_the_local_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("SEENET_DOCS_ONLINE_INVENTORIES", "1")
    mapping = _load_inventories_module().intersphinx_mapping(tmp_path)
    assert mapping["torch"][1] == (None, str(tmp_path / "torch.inv"))
    assert mapping["timm"][1] == (str(tmp_path / "timm.inv"),)  # timm publishes no inventory


@pytest.mark.parametrize("script", sorted(GALLERY.glob("plot_*.py")), ids=lambda p: p.name)
def test_gallery_script_compiles_and_has_a_title(script):
    source = script.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(script))
    doc = ast.get_docstring(tree, clean=False)
    assert doc, f"{script.name} needs a docstring with a title"
    lines = doc.strip("\n").splitlines()
    assert len(lines) >= 2 and set(lines[1]) == {"="} and len(lines[1]) == len(lines[0])


def test_tutorial_index_links_exist():
    text = (DOCS / "tutorials" / "index.md").read_text(encoding="utf-8")
    scripts = re.findall(r"sphx_glr_auto_examples_(plot_\w+)\.py", text)
    assert len(set(scripts)) >= 5
    for name in scripts:
        assert (GALLERY / f"{name}.py").is_file(), name
    for page in re.findall(r"^(\w+)$", text.split("```{toctree}")[1], flags=re.M):
        assert (DOCS / "tutorials" / f"{page}.md").is_file(), page
