"""wsp's types as a user's type checker reads them: ``mypy --strict`` passes
on every Python example of README.md, on every program in examples/ and on a
user's functions returning what wsp's calls return (none of them Any),
checked against the wsp these tests import, as an installed package (found
on the path, read through its ``py.typed``, its own errors not reported, as
mypy does for any installed library).  wsp's own source is not held to
``--strict`` here; what is checked is what a program using it sees: the
names it exports, the signatures and the types they give.

The rest checks the facts those results rest on, so that they cannot drift:
``wsp.__all__`` is a literal list (mypy reads no other form) equal to its own
names plus ``constants.__all__`` and ``errors.__all__``; the subpackages'
``__all__`` are literal too; the application calls that ``Process`` declares
for type checkers are the ones it installs; ``py.typed`` and the core's stub
ship.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wsp
from helpers import importorskip_unless_ci

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
PACKAGE = Path(wsp.__file__).resolve().parent        # the wsp under test
MYPY_TIMEOUT = 150                                    # s; a cold run takes about 20


def _readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _literal_all(path: Path) -> list[str]:
    """The module's ``__all__``, which must be one assignment of a literal
    list of strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    values = [node.value for node in tree.body if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)]
    assert len(values) == 1, f"{path}: __all__ assigned {len(values)} times"
    assert not [node for node in tree.body if isinstance(node, ast.AugAssign)
                and isinstance(node.target, ast.Name) and node.target.id == "__all__"], \
        f"{path}: __all__ extended after its assignment"
    (value,) = values
    assert isinstance(value, ast.List), f"{path}: __all__ is not a literal list"
    names = []
    for elt in value.elts:
        assert isinstance(elt, ast.Constant) and isinstance(elt.value, str), \
            f"{path}: __all__ holds a non-literal ({ast.dump(elt)})"
        names.append(elt.value)
    return names


# A user's functions that return what wsp's calls return: under --strict each
# is an error ("Returning Any from function declared to return ...") if the
# call's result is Any to the checker -- as it was for every method of the
# pure-Python-mode modules while mypy read `cython` as an untyped module.
API_RESULTS = """\
from typing import Optional

import wsp
import wsp.lsp
import wsp.sim


def impl() -> str:
    return wsp.core_impl


def new_socket(proc: wsp.Process) -> int:
    return proc.WSASocket(wsp.AF_INET, wsp.SOCK_STREAM, 0)


def provider_send(provider: wsp.sim.Provider, s: int) -> int:
    return provider.WSPSend(s, [b"x"])[1]


def provider_recv(provider: wsp.sim.Provider, s: int) -> int:
    return provider.WSPRecv(s, [bytearray(8)])[1]


def handle(table: wsp.HandleTable) -> int:
    return table.create()


def packet(queue: wsp.CompletionQueue) -> Optional[tuple[int, int, int, int]]:
    return queue.get(0)


def pending(ov: wsp.Overlapped) -> bool:
    return ov.pending


def sent(tracer: wsp.lsp.TracingProvider) -> int:
    return wsp.lsp.summarize(tracer).sent


def started(proc: wsp.Process) -> bool:
    return proc.wsa_started
"""


@pytest.mark.timeout(MYPY_TIMEOUT + 30)
def test_mypy_strict_passes_on_the_readme_and_the_examples(tmp_path: Path) -> None:
    importorskip_unless_ci("mypy")
    assert EXAMPLES, "examples/ has no programs"
    sources = []
    for i, block in enumerate(_readme_blocks(), 1):
        path = tmp_path / f"readme_example_{i}.py"
        path.write_text(block, encoding="utf-8")
        sources.append(str(path))
    sources += [str(p) for p in EXAMPLES]
    api = tmp_path / "api_results.py"
    api.write_text(API_RESULTS, encoding="utf-8")
    sources.append(str(api))
    config = tmp_path / "mypy.ini"              # no repository or user config
    config.write_text("[mypy]\n", encoding="utf-8")
    env = dict(os.environ)
    # wsp as an installed package: its directory's parent on the path, first.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE.parent)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("MYPYPATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(config),
         "--cache-dir", str(tmp_path / "cache"), "--no-color-output", "--show-error-codes",
         *sources],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=MYPY_TIMEOUT)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy --strict reports:\n{report}"
    assert f"no issues found in {len(sources)} source files" in report, report


def test_mypy_reads_wsp_through_its_py_typed() -> None:
    """Without py.typed mypy would treat an installed wsp as untyped
    (every name Any, "missing library stubs or py.typed marker")."""
    assert (PACKAGE / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    package_data = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^wsp = \[.*"py\.typed".*"\*\.pyi"', package_data, re.M), package_data


def test_mypy_is_in_the_test_extra() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    test_extra = pyproject.split("\ntest = [", 1)[1].split("]", 1)[0]
    assert '"mypy' in test_extra


def test_wsp_all_is_the_literal_list_of_its_names_constants_and_errors() -> None:
    names = _literal_all(PACKAGE / "__init__.py")
    own = ["CompletionQueue", "HandleTable", "ThreadRegistry", "compiled_modules", "core_impl",
           "debug_counters", "constants", "errors", "__version__", "Linger", "Operation",
           "Overlapped", "Process", "ServiceProvider", "ThreadId", "UpcallTable", "WSPData"]
    assert names == own + list(wsp.constants.__all__) + list(wsp.errors.__all__)
    assert names == list(wsp.__all__)
    assert len(set(names)) == len(names)
    assert all(hasattr(wsp, name) for name in names)


@pytest.mark.parametrize("package", ["sim", "lsp", "aio", "spi"])
def test_subpackage_all_is_a_literal_list(package: str) -> None:
    names = _literal_all(PACKAGE / package / "__init__.py")
    if package == "aio" and sys.version_info < (3, 11):
        return                                   # wsp.aio does not import before 3.11
    module = __import__(f"wsp.{package}", fromlist=["__all__"])
    assert names == list(module.__all__)
    assert all(hasattr(module, name) for name in names)


def test_process_declares_for_type_checkers_the_calls_it_installs() -> None:
    """Process gets the application's calls by a loop a type checker cannot
    follow; the ``if TYPE_CHECKING:`` block of the class lists them again."""
    from wsp.spi.application import APPLICATION_CALLS

    path = PACKAGE / "spi" / "process.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Process"]
    (block,) = [n for n in cls.body if isinstance(n, ast.If)
                and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING"]
    declared = [t.id for n in block.body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)]
    assert declared == list(APPLICATION_CALLS)
    for n in block.body:
        if isinstance(n, ast.Assign):            # X = _as_process_call(Application.X)
            (arg,) = n.value.args
            assert arg.attr == n.targets[0].id
    properties = [n.name for n in block.body if isinstance(n, ast.FunctionDef)]
    assert properties == ["wsa_started"]
    assert isinstance(wsp.Process.__dict__["wsa_started"], property)


def test_core_stub_names_the_pure_twins_api() -> None:
    """``_core.pyi`` (what a checker reads for the compiled core) offers the
    same public names as the pure twin ``_core_py``."""
    import wsp._core_py as pure

    stub = ast.parse((PACKAGE / "_core.pyi").read_text(encoding="utf-8"))
    names = _literal_all_of(stub)
    assert sorted(names) == sorted(pure.__all__)
    classes = [n for n in stub.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")]
    assert sorted(c.name for c in classes) == sorted(
        n for n in pure.__all__ if isinstance(getattr(pure, n), type))
    for cls in classes:
        stubbed = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)
                   and not n.name.startswith("_")}
        public = {n for n in vars(getattr(pure, cls.name)) if not n.startswith("_")}
        assert stubbed == public, cls.name
        for fn in cls.body:
            if isinstance(fn, ast.FunctionDef) and fn.name in public | {"__init__"} and \
                    not isinstance(getattr(pure, cls.name).__dict__[fn.name], property):
                assert _stub_parameters(fn) == _parameters(
                    getattr(getattr(pure, cls.name), fn.name)), f"{cls.name}.{fn.name}"
    for fn in stub.body:
        if isinstance(fn, ast.FunctionDef):
            assert _stub_parameters(fn) == _parameters(getattr(pure, fn.name)), fn.name


def _stub_parameters(fn: ast.FunctionDef) -> list[tuple[str, bool]]:
    """A stub function's (parameter name, has a default), in order."""
    args = fn.args.posonlyargs + fn.args.args
    defaults = [False] * (len(args) - len(fn.args.defaults)) + [True] * len(fn.args.defaults)
    return list(zip([a.arg for a in args], defaults)) + [
        (a.arg, d is not None) for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults)]


def _parameters(func: object) -> list[tuple[str, bool]]:
    import inspect

    return [(p.name, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(func).parameters.values()]  # type: ignore[arg-type]


def _literal_all_of(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("no __all__")

