# C layout of wsp.spi.ports when compiled (pure-Python mode: ports.py is the
# code; this file declares its types for it and for the engine, which posts
# every completion through Ports.post without a Python-level call).

from wsp.spi.handles cimport HandleSpace, PortEntry

cdef class Ports:
    cdef public HandleSpace handles
    cdef public object waits
    cdef object _registry
    cdef public object inflight
    cdef object _lock

    cpdef bint post(self, object port, object status, object nbytes, object key,
                    object riding) except? 0
    cdef tuple _unpack(self, tuple packet, bint win32)
