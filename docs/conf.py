"""Sphinx configuration of the seenet documentation.

Build with ``make docs`` (warnings are errors). The build needs no network: intersphinx reads small
local inventories (see ``_inventories.py``), the gallery scripts in ``examples/gallery`` run on the
CPU in seconds, and nothing is downloaded (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))

import torch  # noqa: E402
from _inventories import intersphinx_mapping as _local_inventories  # noqa: E402

import seenet  # noqa: E402

# The gallery's small tensors run fastest on one thread, and a busy 2-core machine is not
# oversubscribed; SEENET_DOCS_THREADS changes it.
torch.set_num_threads(int(os.environ.get("SEENET_DOCS_THREADS", "1")))

# -- Project -------------------------------------------------------------------------------------
project = "seenet"
author = "the seenet developers"
copyright = "the seenet developers"
release = seenet.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "generated/*.tmp",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
]
default_role = "py:obj"
nitpicky = False

# -- autodoc / autosummary / napoleon ------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
napoleon_custom_sections = [("Shape", "notes_style")]

# -- intersphinx: local inventories, no network --------------------------------------------------
intersphinx_mapping = _local_inventories(DOCS / "_build" / "_inventories")
intersphinx_timeout = 5

# -- MyST ----------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3

# -- sphinx-gallery ------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": [str(DOCS.parent / "examples" / "gallery")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "plot_gallery": "True",
    "image_scrapers": ("matplotlib",),
    "doc_module": ("seenet",),
    "reference_url": {"seenet": None},
    "backreferences_dir": None,
    "show_memory": False,
    "min_reported_time": 1,
    "write_computation_times": False,
}

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"seenet {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
