"""Sphinx configuration for wsp's documentation.

Build (from the repository root, after wsp is installed or built in place):

    sphinx-build -W --keep-going -b html docs docs/_build/html

autodoc imports wsp itself, so the pages document the build in use
(compiled or pure); the docstrings are the same in both.
"""
import glob
import os
import sys

# Which wsp autodoc imports: a source tree built in place (setup.py
# build_ext --inplace, so its compiled modules sit in src/) documents itself;
# otherwise the installed wsp (CI installs it with pip before building the
# docs), and failing that the source tree's pure-Python modules.
_src = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, "src"))
if any(glob.glob(os.path.join(_src, "wsp", "_core*" + ext)) for ext in (".so", ".pyd")):
    sys.path.insert(0, _src)
else:
    try:
        import wsp  # noqa: F401
    except ImportError:
        sys.path.insert(0, _src)

import wsp  # noqa: E402

print(f"documenting wsp {wsp.__version__} from {os.path.dirname(wsp.__file__)} "
      f"(core: {wsp.core_impl})")

# docs/_ext/wspdocs.py: the tables of error codes and constants, the CLI's help
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

project = "wsp"
author = "the wsp authors"
copyright = "the wsp authors"
release = wsp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosectionlabel",
    "wspdocs",
]

# Every section can be cited by page and title, e.g. in a docstring:
# :ref:`guide/spi-model:Overlapped operations`.
autosectionlabel_prefix_document = True

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
