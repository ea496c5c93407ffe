"""Sphinx configuration for uplink62676 (API reference generated from docstrings)."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "_ext"))

project = "uplink62676"
author = "uplink62676 contributors"
copyright = "2026, uplink62676 contributors"  # noqa: A001
release = "0.1.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode",
              "sphinx.ext.graphviz", "uplinkdocs"]
graphviz_output_format = "svg"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build", "_generated"]
suppress_warnings = ["autodoc.import_object"]
