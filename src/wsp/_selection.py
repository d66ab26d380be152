"""Which twin of each pure-Python-mode module is loaded: the compiled extension or its ``.py``
source (the data plane is compiled:
``docs/guide/spi-model.rst, "Layers and the calling convention"``).

This is the only place that decides it.  A module named in
:data:`wsp._compiled.COMPILED_MODULES` exists twice in an installed wsp: its
``.py`` source and, on a normal build, the extension module Cython compiled
from that same source, side by side in the same directory.  Python's path
finder prefers the extension (``EXTENSION_SUFFIXES`` come before ``.py``),
so nothing needs doing to get the compiled twins.  To get the sources:

* ``WSP_NO_EXTENSIONS`` set to any non-empty value when ``wsp`` is imported
  (or an interpreter other than CPython) -- every listed module, and the
  core too (:mod:`wsp.core`);
* ``WSP_PURE_MODULES`` -- a comma-separated list of listed module names, or
  ``*`` for all of them -- those and the compiled modules that cimport them
  (:func:`with_dependents`); the rest (and the core) stay compiled.
  It exists for tests and for measuring one module's compiled gain.

Design: ``wsp/__init__.py`` calls :func:`install` before it imports anything
else, and when a source twin is wanted that puts a finder at the front of
``sys.meta_path``.  The finder answers for the wanted module names only (any
other import, wsp's or not, passes through untouched), and answers with the
spec the standard path finder would give if ``.py`` were the only suffix:
an ``importlib.machinery.FileFinder`` over the parent package's ``__path__``
with ``SourceFileLoader`` -- so ``__file__``, ``__cached__``, bytecode caching
and ``importlib.reload`` behave as for any source module.  A finder is used
rather than importing the twins by file name from a helper because the
listed modules are ordinary submodules imported with ordinary ``from .x
import y`` statements all over wsp: intercepting the import itself is the one
way that every importer gets the same module object.  When no source twin is
wanted, nothing is installed and imports cost what they always did.

Whether a module is compiled is read from the module itself
(:func:`is_compiled`: its loader, or the suffix of its ``__file__``), never
inferred from the environment, so :func:`data_plane_modules` -- and
``wsp.compiled_modules()`` and ``wsp.core_impl``, which add the core's choice
(:mod:`wsp.core`) to it -- report what is in use, including a build that
compiled nothing.

This module imports nothing from wsp except the data-only ``_compiled``, so
that it can run first (and :mod:`wsp.core` can take its ``NO_EXTENSIONS``).
"""
from __future__ import annotations

import importlib
import os
import platform
import sys
import warnings
from importlib.machinery import (EXTENSION_SUFFIXES, SOURCE_SUFFIXES, ExtensionFileLoader,
                                 FileFinder, SourceFileLoader)
from types import ModuleType
from typing import Iterable

from ._compiled import CIMPORTS, COMPILED_MODULES

__all__ = ["COMPILED_MODULES", "NO_EXTENSIONS", "SOURCE_TWINS", "SourceTwinFinder",
           "data_plane_modules", "install", "is_compiled", "with_dependents"]

#: The compiled extensions are not to be used at all
#: (``docs/guide/spi-model.rst, "Layers and the calling convention"``): the core's pure twin and
#: every listed module's source.  The extensions are CPython-only, so any other interpreter gets
#: the pure twins as well.
NO_EXTENSIONS = bool(os.environ.get("WSP_NO_EXTENSIONS")) or (
    platform.python_implementation() != "CPython"
)


def _wanted_sources() -> frozenset[str]:
    """The listed modules that must load from source, from the environment."""
    if NO_EXTENSIONS:
        return frozenset(COMPILED_MODULES)
    names = {n.strip() for n in os.environ.get("WSP_PURE_MODULES", "").split(",") if n.strip()}
    if "*" in names:
        return frozenset(COMPILED_MODULES)
    unknown = sorted(names.difference(COMPILED_MODULES))
    if unknown:
        # A typo must not make `import wsp` fail; it must not pass unnoticed either.
        warnings.warn(f"WSP_PURE_MODULES names modules that are not compiled: "
                      f"{', '.join(unknown)} (compiled: {', '.join(COMPILED_MODULES)})",
                      RuntimeWarning, stacklevel=3)
    return with_dependents(names.intersection(COMPILED_MODULES))


def with_dependents(names: Iterable[str]) -> frozenset[str]:
    """`names` plus every listed module that cimports one of them, directly
    or through another (see :data:`wsp._compiled.CIMPORTS`): a compiled
    module cannot run over the source twin of a module it cimports."""
    wanted = set(names)
    grew = True
    while grew:
        grew = False
        for module, cimported in CIMPORTS.items():
            if module not in wanted and wanted.intersection(cimported):
                wanted.add(module)
                grew = True
    return frozenset(wanted)


#: The listed modules that this process loads from their ``.py`` source even
#: where a compiled twin sits beside it (fixed when wsp is imported).
SOURCE_TWINS = _wanted_sources()


class SourceTwinFinder:
    """A ``sys.meta_path`` finder that loads the named modules from their
    ``.py`` source, never from a compiled extension beside it."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path=None, target=None):
        """The source spec of `fullname` if it is one of ours, else None (the
        next finder decides).  ImportError if its source is missing: loading
        the compiled twin instead would break the promise silently."""
        if fullname not in self.names:
            return None
        if path is None:                # a top-level name: never one of ours
            return None
        for entry in path:
            spec = FileFinder(entry, (SourceFileLoader, SOURCE_SUFFIXES)).find_spec(fullname,
                                                                                   target)
            if spec is not None and spec.loader is not None:
                return spec
        raise ImportError(f"{fullname}: its source twin was asked for (WSP_NO_EXTENSIONS or "
                          f"WSP_PURE_MODULES) but no .py source is installed", name=fullname)

    def invalidate_caches(self) -> None:
        """Nothing to forget: every lookup reads the directory afresh."""

    def __repr__(self) -> str:
        return f"<SourceTwinFinder {sorted(self.names)}>"


def install() -> None:
    """Make the modules of :data:`SOURCE_TWINS` load from source (if any);
    idempotent.  Must run before any of them is imported: ``wsp/__init__.py``
    calls it first thing."""
    if not SOURCE_TWINS:
        return
    for finder in sys.meta_path:
        # by class name: a reloaded wsp brings a new class, the old finder still works
        if type(finder).__name__ == "SourceTwinFinder" and getattr(finder, "names", None):
            return
    sys.meta_path.insert(0, SourceTwinFinder(SOURCE_TWINS))


def is_compiled(module: ModuleType) -> bool:
    """True if `module` was loaded from a compiled extension module."""
    spec = getattr(module, "__spec__", None)
    if isinstance(getattr(spec, "loader", None), ExtensionFileLoader):
        return True
    return str(getattr(module, "__file__", None) or "").endswith(tuple(EXTENSION_SUFFIXES))


def data_plane_modules() -> dict[str, bool]:
    """Whether each module of :data:`COMPILED_MODULES` is its compiled twin,
    in that order.  Imports them (``wsp.sim`` with them) if they are not
    imported yet.  ``wsp.compiled_modules()`` adds the core to this."""
    return {name: is_compiled(importlib.import_module(name)) for name in COMPILED_MODULES}
