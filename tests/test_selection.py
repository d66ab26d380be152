"""Which core `import wsp` uses, which twin of each compiled data-plane module
(wsp._compiled) it loads, and what the package exports."""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
import types
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import wsp
from wsp._compiled import CIMPORTS, COMPILED_MODULES
from wsp._selection import SourceTwinFinder, is_compiled, with_dependents

NO_EXTENSIONS = bool(os.environ.get("WSP_NO_EXTENSIONS"))


@pytest.mark.skipif(NO_EXTENSIONS, reason="WSP_NO_EXTENSIONS forces the pure twin")
def test_normal_install_uses_the_compiled_core():
    from wsp import _core
    assert wsp.core_impl == "cython"
    assert wsp.HandleTable is _core.HandleTable
    assert wsp.ThreadRegistry is _core.ThreadRegistry
    assert wsp.CompletionQueue is _core.CompletionQueue


@pytest.mark.parametrize("value, expected", [("1", "python"), ("yes", "python"), ("", None)])
def test_wsp_no_extensions_at_import_time(value, expected):
    env = dict(os.environ, WSP_NO_EXTENSIONS=value)
    code = "import wsp; print(wsp.core_impl, wsp.HandleTable.__module__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    if expected is None:           # empty means unset: the normal choice
        expected = wsp.core_impl if not os.environ.get("WSP_NO_EXTENSIONS") else "cython"
    assert out[0] == expected
    assert out[1] == ("wsp._core_py" if expected == "python" else "wsp._core")


def test_package_reexports_errors_and_constants():
    assert wsp.WinsockError is wsp.errors.WinsockError
    assert wsp.WSAENOTSOCK == 10038 and wsp.WSA_IO_PENDING == 997
    assert wsp.SOCKET_ERROR == -1 and wsp.INFINITE == 0xFFFFFFFF
    assert wsp.AF_INET == 2 and wsp.SO_DONTLINGER == -129
    assert wsp.INVALID_SOCKET == 2 ** 64 - 1
    assert isinstance(wsp.__version__, str) and wsp.__version__
    for name in wsp.__all__:
        assert hasattr(wsp, name), name


# ------------------------------------------- the compiled data plane (wsp._compiled)
# Every module of COMPILED_MODULES is one .py source, compiled beside itself on a
# normal build; wsp._selection decides at import time which twin loads.

# What a child interpreter reports about the twins it got.
REPORT = """
import importlib, json, sys
import wsp, wsp.core
from wsp._compiled import COMPILED_MODULES
mods = {n: importlib.import_module(n) for n in COMPILED_MODULES}
print(json.dumps({
    "core_impl": wsp.core_impl,
    "core": wsp.core.core_impl,
    "compiled": wsp.compiled_modules(),
    "files": {n: m.__file__ for n, m in mods.items()},
    "loaders": {n: type(m.__spec__.loader).__name__ for n, m in mods.items()},
    # one module object, whoever imports it
    "shared": (wsp.Overlapped is mods["wsp.spi.structs"].Overlapped
               is sys.modules["wsp.sim.data"].Overlapped),
}))
"""


def child(code: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with `env` changed (None: unset)."""
    environ = dict(os.environ)
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                          text=True, timeout=60, check=True)


def child_report(**env: str | None) -> dict:
    return json.loads(child(REPORT, **env).stdout)


def source_of(name: str) -> Path:
    """The .py source of a listed module, wherever its loaded twin lives."""
    module = importlib.import_module(name)
    return Path(module.__file__).with_name(name.rsplit(".", 1)[1] + ".py")


def has_extension_beside(name: str) -> bool:
    source = source_of(name)
    return any(source.with_name(source.stem + suffix).is_file()
               for suffix in EXTENSION_SUFFIXES)


def test_compiled_modules_lists_the_core_then_every_listed_module():
    report = wsp.compiled_modules()
    assert list(report) == ["wsp._core", *COMPILED_MODULES]
    assert all(isinstance(v, bool) for v in report.values())
    assert report["wsp._core"] is (wsp.core.core_impl == "cython")
    for name in COMPILED_MODULES:
        assert report[name] is is_compiled(sys.modules[name])
    assert wsp.core_impl == ("cython" if all(report.values()) else "python")


@pytest.mark.skipif(NO_EXTENSIONS, reason="WSP_NO_EXTENSIONS forces the pure twins")
def test_normal_install_compiles_every_listed_module():
    # Not a skip on a normal install: a listed module left uncompiled is a failure.
    report = wsp.compiled_modules()
    assert [n for n, compiled in report.items() if not compiled] == []
    assert wsp.core_impl == "cython"
    for name in COMPILED_MODULES:
        module = sys.modules[name]
        assert module.__file__.endswith(tuple(EXTENSION_SUFFIXES)), module.__file__
        assert source_of(name).is_file(), f"{name}: its pure twin (.py) is not installed"


@pytest.mark.skipif(not NO_EXTENSIONS, reason="only under WSP_NO_EXTENSIONS")
def test_wsp_no_extensions_in_this_run_uses_every_source_twin():
    assert not any(wsp.compiled_modules().values())
    assert wsp.core_impl == "python"
    for name in COMPILED_MODULES:
        assert sys.modules[name].__file__ == str(source_of(name))


def test_wsp_no_extensions_loads_every_listed_module_from_its_source():
    report = child_report(WSP_NO_EXTENSIONS="1", WSP_PURE_MODULES=None)
    assert report["core_impl"] == "python" and report["core"] == "python"
    assert report["compiled"] == {n: False for n in ["wsp._core", *COMPILED_MODULES]}
    assert report["shared"] is True
    for name in COMPILED_MODULES:
        assert report["loaders"][name] == "SourceFileLoader"
        assert report["files"][name] == str(source_of(name))
        if not NO_EXTENSIONS:       # ... even though the compiled twin sits beside it
            assert has_extension_beside(name), name


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_one_module_from_source_makes_core_impl_python(name):
    report = child_report(WSP_NO_EXTENSIONS=None, WSP_PURE_MODULES=name)
    assert report["core_impl"] == "python"
    assert report["compiled"][name] is False
    assert report["loaders"][name] == "SourceFileLoader"
    assert report["shared"] is True
    if not NO_EXTENSIONS:           # the rest stays compiled, but for what cimports it
        assert report["core"] == "cython"
        pure = [n for n, c in report["compiled"].items() if not c]
        assert pure == [n for n in COMPILED_MODULES if n in with_dependents([name])]


def test_a_source_twin_brings_the_modules_that_cimport_it():
    assert with_dependents(["wsp.spi.handles"]) >= {"wsp.spi.handles", "wsp.spi.ports",
                                                    "wsp.spi.engine"}
    assert with_dependents(["wsp.spi.engine"]) >= {"wsp.spi.engine"}
    assert "wsp.spi.ports" not in with_dependents(["wsp.spi.engine"])
    assert with_dependents([]) == frozenset()
    # every cimport names a listed module, and every listed module is described
    assert set(CIMPORTS) == set(COMPILED_MODULES)
    assert all(set(deps) <= set(COMPILED_MODULES) for deps in CIMPORTS.values())


def test_every_module_from_source_keeps_the_compiled_core():
    # WSP_PURE_MODULES=* : the data plane from source over the compiled core
    # (what a measurement of the data plane's compiled gain compares against).
    report = child_report(WSP_NO_EXTENSIONS=None, WSP_PURE_MODULES="*")
    assert report["core_impl"] == "python"
    assert not any(report["compiled"][n] for n in COMPILED_MODULES)
    if not NO_EXTENSIONS:
        assert report["core"] == "cython" and report["compiled"]["wsp._core"] is True


def test_an_unknown_pure_module_name_warns_and_changes_nothing():
    run = child(REPORT, WSP_NO_EXTENSIONS=None, WSP_PURE_MODULES="wsp.sim.nope, ")
    assert "RuntimeWarning" in run.stderr and "wsp.sim.nope" in run.stderr
    report = json.loads(run.stdout)
    if not NO_EXTENSIONS:
        assert report["core_impl"] == "cython"


def test_the_source_finder_answers_for_its_names_only(tmp_path):
    import wsp.spi
    finder = SourceTwinFinder(["wsp.spi.structs"])
    spec = finder.find_spec("wsp.spi.structs", wsp.spi.__path__)
    assert type(spec.loader).__name__ == "SourceFileLoader"
    assert spec.origin == str(source_of("wsp.spi.structs"))
    assert finder.find_spec("wsp.spi.engine", wsp.spi.__path__) is None
    assert finder.find_spec("wsp", None) is None
    with pytest.raises(ImportError, match="no .py source"):
        finder.find_spec("wsp.spi.structs", [str(tmp_path)])


# ---------------- what compiling must not change (both twins pass; it matters compiled)
def _definitions(tree: ast.Module):
    """(qualname, node) of every class, function and method a module defines."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            yield node.name, node
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    yield f"{node.name}.{item.name}", item


_CDEF = object()      # what _live gives for a name the compiled twin keeps C-only


def _declared_cdef(name: str, attr: str) -> bool:
    """Whether the module's .pxd declares `attr` a C-only (``cdef``) function
    or method, which the compiled twin does not expose to Python."""
    pxd = source_of(name).with_suffix(".pxd")
    if not pxd.is_file():
        return False
    return any(line.split("(")[0].split()[-1] == attr
               for line in pxd.read_text(encoding="utf-8").splitlines()
               if line.strip().startswith("cdef ") and "(" in line)


def _live(module, qualname: str):
    """The function (unwrapped from staticmethod/property) or class named."""
    owner_name, _, attr = qualname.rpartition(".")
    if not owner_name:
        return getattr(module, attr, _CDEF)
    obj = vars(getattr(module, owner_name)).get(attr, _CDEF)
    if isinstance(obj, property):
        return obj.fget
    if isinstance(obj, (staticmethod, classmethod)):
        return obj.__func__
    return obj


def _parameters(node: ast.FunctionDef) -> list[tuple[str, str, bool]]:
    args = node.args
    positional = args.posonlyargs + args.args
    first_default = len(positional) - len(args.defaults)
    params = [(a.arg, "POSITIONAL_ONLY" if a in args.posonlyargs else "POSITIONAL_OR_KEYWORD",
               i >= first_default) for i, a in enumerate(positional)]
    if args.vararg:
        params.append((args.vararg.arg, "VAR_POSITIONAL", False))
    params += [(a.arg, "KEYWORD_ONLY", d is not None)
               for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        params.append((args.kwarg.arg, "VAR_KEYWORD", False))
    return params


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_docstrings_signatures_and_names_are_those_of_the_source(name):
    module = importlib.import_module(name)
    tree = ast.parse(source_of(name).read_text(encoding="utf-8"))
    assert inspect.cleandoc(module.__doc__) == ast.get_docstring(tree)
    checked = 0
    for qualname, node in _definitions(tree):
        obj = _live(module, qualname)
        if obj is _CDEF:
            # A helper the .pxd makes C-only (compiled callers reach it without a
            # Python call), or __dealloc__, an extension type's C slot; the pure
            # twin keeps either as a plain function.
            attr = qualname.rpartition(".")[2]
            assert is_compiled(module)
            assert attr == "__dealloc__" or _declared_cdef(name, attr), qualname
            continue
        if isinstance(obj, types.GetSetDescriptorType):
            # A property of an extension type: its getter's docstring stays.
            assert is_compiled(module)
            assert inspect.cleandoc(obj.__doc__ or "") == (ast.get_docstring(node) or ""), \
                qualname
            continue
        if isinstance(obj, types.WrapperDescriptorType):
            # A special method of a compiled @cython.cclass (an extension type's
            # slot, e.g. __init__): C slots carry no signature, name or doc.
            assert is_compiled(module) and node.name.startswith("__"), qualname
            continue
        assert obj.__module__ == name and obj.__qualname__ == qualname, qualname
        doc = ast.get_docstring(node)
        assert (inspect.cleandoc(obj.__doc__) if obj.__doc__ else None) == doc, qualname
        if isinstance(node, ast.FunctionDef):
            got = [(p.name, p.kind.name, p.default is not p.empty)
                   for p in inspect.signature(obj).parameters.values()]
            assert got == _parameters(node), qualname
            checked += 1
    assert checked >= 5


def test_compiled_classes_subclass_and_introspect_like_python(monkeypatch, proc, sock):
    from wsp.sim.socket import Connection
    from wsp.spi import engine as engine_module
    from wsp.spi.engine import Engine
    from wsp.spi.structs import Overlapped

    compiled = is_compiled(engine_module)

    class Tagged(Overlapped):
        __slots__ = ("tag",)

        def __init__(self, tag):
            super().__init__(None)
            self.tag = tag

        def __repr__(self):
            return f"{self.tag}:{super().__repr__()}"

    ov = Tagged("t")
    assert ov.tag == "t" and ov.pending is False and repr(ov).startswith("t:<Overlapped ")
    with pytest.raises(AttributeError):
        ov.not_a_field = 1                       # no __dict__ all the way down
    pending = vars(Overlapped)["pending"]
    assert isinstance(pending, property if not compiled else types.GetSetDescriptorType)
    assert isinstance(vars(Connection)["addresses"],
                      property if not compiled else types.GetSetDescriptorType)
    op = proc.start_overlapped(sock, ov)
    assert ov.pending and ov.operation is op
    assert proc.complete_overlapped(op, 0, 5) is True
    assert (ov.Internal, ov.InternalHigh) == (0, 5)
    if not compiled:
        # the pure twin: a method patched on a class is what its callers get
        delivered = []
        original = Engine.deliver

        def deliver(self, op, *args):
            delivered.append(op)
            return original(self, op, *args)

        monkeypatch.setattr(Engine, "deliver", deliver)
        op = proc.start_overlapped(sock, ov)
        assert proc.complete_overlapped(op, 0, 6) is True
        assert delivered == [op] and ov.InternalHigh == 6
    else:
        # the compiled engine is an extension type whose callers bind at C
        # level: patching it would silently not take, so Python refuses it
        with pytest.raises(TypeError):
            Engine.deliver = lambda *a: None
        assert "deliver" in vars(Engine)


def test_the_pure_twins_run_without_cython_installed():
    # Cython is a build dependency only: uncompiled, a module that says
    # `import cython` falls back to wsp._cython_shim.
    code = """
import importlib, sys
sys.modules["cython"] = None          # as if Cython were not installed
from wsp.cli import main
import wsp, wsp._cython_shim
from wsp._compiled import COMPILED_MODULES
modules = [importlib.import_module(n) for n in COMPILED_MODULES]
users = [m for m in modules if getattr(m, "cython", None) is not None]
assert users and all(m.cython is wsp._cython_shim for m in users), users
rc = main(["sim", "--connections", "3", "--messages", "4", "--json"])
sys.exit(rc)
"""
    run = child(code, WSP_NO_EXTENSIONS=None, WSP_PURE_MODULES="*")
    report = json.loads(run.stdout)
    assert report["messages"] == 12 and report["leaked"] == 0 and report["core"] == "python"


def test_the_cython_shim_is_a_no_op():
    from wsp import _cython_shim as cython

    def f(x):
        return x

    assert cython.compiled is False
    for decorator in (cython.cclass, cython.cfunc, cython.ccall, cython.final, cython.inline,
                      cython.locals(x=cython.Py_ssize_t), cython.returns(cython.bint)):
        assert decorator(f) is f
    assert cython.declare(cython.int, 5) == 5 and cython.declare(object) is None
    assert (cython.int, cython.Py_ssize_t, cython.bint) == (int, int, bool)
