# C layout of wsp.spi.ports when compiled (pure-Python mode: ports.py is the
# code; this file declares its types for it and for the engine, which posts
# every completion through Ports.post without a Python-level call).

from cpython.ref cimport Py_DECREF, Py_INCREF
from wsp.spi.handles cimport HandleSpace, PortEntry

cdef size_t _board(object inflight, object riding) except? 0
cdef object _alight(object inflight, object overlapped_id)

cdef class Ports:
    cdef public HandleSpace handles
    cdef public object waits
    cdef object _registry
    cdef public object inflight
    cdef public Py_ssize_t riders
    cdef object _lock
    cdef public object clock

    cpdef bint post(self, object port, object status, object nbytes, object key,
                    object riding) except? 0
    cdef tuple _unpack(self, tuple packet, bint win32)
