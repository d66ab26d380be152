# C layout of wsp.spi.engine when compiled (pure-Python mode: engine.py is
# the code; this file declares its types for it and for the compiled data
# path, which calls the engine without a Python-level call).

cimport cython
from wsp.spi.structs cimport Overlapped
from wsp.spi.handles cimport HandleSpace, SocketEntry
from wsp.spi.ports cimport Ports

@cython.final
cdef class Operation:
    cdef public Overlapped overlapped
    cdef public object socket
    cdef public SocketEntry entry
    cdef public object provider
    cdef public object routine
    cdef public object thread_handle
    cdef public object buffers
    cdef public object event
    cdef public object settled
    cdef object __weakref__

cdef Overlapped _record(Operation op, object error, object nbytes, object flags)

cdef class Engine:
    cdef public HandleSpace handles
    cdef object _registry
    cdef public object events
    cdef public object waits
    cdef public Ports ports
    cdef object _lock
    cdef dict _owed
    cdef dict _detached
    cdef public object clock

    cpdef Operation start_on(self, object entry, object s, object overlapped, object routine,
                             object thread_id, object buffers, object provider, object funcname)
    cdef bint _claim(self, Operation op)
    cpdef bint complete(self, object op, object error, object nbytes, object flags=*) except? 0
    cpdef deliver(self, object op, object entry, object overlapped, object error,
                  object nbytes, object flags)
