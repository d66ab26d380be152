"""Sphinx configuration for wsp's documentation.

Build (from the repository root, after wsp is installed or built in place):

    sphinx-build -W --keep-going -b html docs docs/_build/html

autodoc imports wsp itself, so the pages document the build in use
(compiled or pure); the docstrings are the same in both.
"""
import os
import sys

# A source tree built in place (setup.py build_ext --inplace) documents
# itself; an installed wsp is found on sys.path as usual.
_src = os.path.join(os.path.dirname(__file__), os.pardir, "src")
if os.path.isdir(os.path.join(_src, "wsp")):
    sys.path.insert(0, os.path.abspath(_src))

import wsp  # noqa: E402

# docs/_ext: the tables of error codes and constants (wspdocs)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

project = "wsp"
author = "the wsp authors"
copyright = "the wsp authors"
release = wsp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "wspdocs",
]

exclude_patterns = ["_build"]
templates_path = []
html_static_path = []

# Built-in theme: no dependency beyond Sphinx.
html_theme = "alabaster"
html_theme_options = {
    "description": "The Winsock 2 SPI, in-process, on any OS",
    "fixed_sidebar": True,
}

autodoc_member_order = "bysource"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
# The signatures carry the annotations; repeating them in the text adds nothing.
autodoc_typehints = "signature"
# Cython's embedsignature puts the signature in the first docstring line.
autodoc_docstring_signature = True
