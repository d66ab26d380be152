# cython: language_level=3
"""wsp._core -- the compiled core of wsp (``docs/guide/spi-model.rst, "The core"``).

Three thread-safe structures that the SPI layer builds on:

* ``HandleTable``     -- socket handles (generation-tagged, never reused soon);
* ``ThreadRegistry``  -- thread handles (WSATHREADID) and per-thread APC queues;
* ``CompletionQueue`` -- the packet queue of an I/O completion port.

Plain integers cross the C boundary; Python objects (contexts, APCs) sit in
owned pointers beside the integer structures.  Locks are C spinlocks taken
without the GIL; threads that must block park on an OS lock with the GIL
released.  ``wsp._core_py`` is the pure-Python twin with the same behaviour,
and the test-suite holds this module to it.

Where the GIL is released (``with nogil`` blocks and ``noexcept nogil``
functions):

* every spinlock-protected section (``slots_*``, ``_take``, ``_deliver``,
  ``_create_batch``, ``_close_batch``) is ``noexcept nogil`` C code;
* ``CompletionQueue.get``/``get_many`` and ``ThreadRegistry.wait`` park in
  ``park()`` inside ``with nogil``;
* ``create_many``, ``close_many`` and ``post_many`` run their loops inside
  ``with nogil`` once a batch has ``NOGIL_BATCH`` (256) items, and so do
  their buffer forms ``create_into``, ``close_from``, ``post_from`` and
  ``get_into`` (the last when both the request and the queue hold that many
  packets).  The buffer forms hold the caller's buffer export (a Py_buffer)
  for the whole call, so the memory they read and write cannot be resized
  or freed under them, and they build no Python object per item.
"""

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XDECREF
from cpython.mem cimport PyMem_RawMalloc, PyMem_RawCalloc, PyMem_RawRealloc, PyMem_RawFree
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.sequence cimport PySequence_Tuple
from cpython.exc cimport PyErr_CheckSignals, PyErr_Clear, PyErr_ExceptionMatches
from cpython.buffer cimport (PyBuffer_IsContiguous, PyBuffer_Release, PyBUF_RECORDS,
                             PyBUF_RECORDS_RO)
from cpython.number cimport PyNumber_Index
from libc.stdint cimport uint32_t, uint64_t, int64_t, uintptr_t
from libc.math cimport INFINITY
from libc.string cimport memcpy

from threading import local as _thread_local
from weakref import ref as _weakref

from wsp.errors import WinsockError as _WinsockError

# The few WSA codes the core raises, as C constants (values: wsa-errors.tsv).
cdef enum:
    WSA_INVALID_HANDLE = 6
    WSAEINVAL = 10022
    WSAENOTSOCK = 10038
    WSAENOBUFS = 10055


cdef object _error(int code):
    return _WinsockError(code)


include "_core_parts/common.pxi"
include "_core_parts/handles.pxi"
include "_core_parts/threads.pxi"
include "_core_parts/completion.pxi"


# What setup.py compiled this module with (C macros it defines), for `wsp info`.
cdef extern from *:
    """
    #ifndef WSP_CYTHON_VERSION
    #define WSP_CYTHON_VERSION "unknown"
    #endif
    #ifndef WSP_BUILD_FLAGS
    #define WSP_BUILD_FLAGS "unknown"
    #endif
    """
    const char *WSP_CYTHON_VERSION
    const char *WSP_BUILD_FLAGS


def build_info():
    """How this core was built: ``{"cython": version, "flags": compiler
    flags, "debug": bool}`` (the pure twin answers with ``None``s)."""
    flags = WSP_BUILD_FLAGS.decode()
    return {"cython": WSP_CYTHON_VERSION.decode(), "flags": flags,
            "debug": "-O0" in flags.split() or "/Od" in flags.split()}


@cython.final
cdef class _CallFloor:
    """A method that does nothing: the cost floor of calling into this
    extension, measured by the benchmarks next to the real operations."""

    def call(self, x):
        return x


__all__ = ["HandleTable", "ThreadRegistry", "CompletionQueue", "build_info", "debug_counters"]
