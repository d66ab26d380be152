"""The few names of Cython's pure-Python mode that wsp's pure-Python-mode
modules use, for when they run uncompiled and Cython is not installed (it is
a build dependency only).

Such a module starts with::

    try:
        import cython                 # Cython compiling it, or Cython.Shadow
    except ImportError:
        from .. import _cython_shim as cython

Compiled, ``import cython`` is Cython's compile-time module and the fallback
is dead code; uncompiled with Cython installed it is ``Cython.Shadow``, whose
decorators do nothing either.  Here every decorator returns what it decorates
and every C type is the Python type it stands for, so the module runs as the
plain Python it is.  Declarations (``cython.declare``) belong under ``if
cython.compiled:``, where the pure twin never runs them.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

_T = TypeVar("_T")

#: False: this module only ever stands in for Cython when nothing is compiled.
compiled = False

# C types, as the Python types they hold
int = int  # cython.int: a C int
Py_ssize_t = int
bint = bool
long = int
double = float
p_char = bytes  # cython.p_char: a char * (only ever used in compiled branches)


def _same(obj: _T) -> _T:
    return obj


#: ``cdef class``, ``cdef``, ``cpdef``, ``final``, ``inline``: nothing in Python.
cclass = cfunc = ccall = final = inline = _same


def locals(**types: Any) -> Callable[[_T], _T]:  # noqa: A001 -- Cython's own name
    """``@cython.locals(name=type, ...)``: the types of a function's locals."""
    return _same


def returns(type: Any) -> Callable[[_T], _T]:  # noqa: A002
    """``@cython.returns(type)``: a function's C return type."""
    return _same


def declare(type: Any = None, value: Any = None, **kwargs: Any) -> Any:  # noqa: A002
    """``cython.declare(type, value)``: `value` itself in Python."""
    return value


def cast(type: Any, value: _T, typecheck: bool = False) -> _T:  # noqa: A002
    """``cython.cast(type, value)``: `value` itself in Python (a compiled
    caller has checked its type first)."""
    return value


def address(value: Any) -> Any:
    """``cython.address(x)``: ``&x`` compiled; never reached uncompiled (the
    pure twin runs no ``if cython.compiled:`` branch)."""
    raise NotImplementedError("cython.address has no pure-Python meaning")
