"""Which core `import wsp` uses, and what the package exports."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import wsp


@pytest.mark.skipif(bool(os.environ.get("WSP_NO_EXTENSIONS")),
                    reason="WSP_NO_EXTENSIONS forces the pure twin")
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
