# C layout of wsp.spi.handles when compiled (pure-Python mode: handles.py is
# the code; this file declares its types for it and for cimporting modules).

cimport cython
from cpython.ref cimport Py_DECREF

@cython.final
cdef class SocketEntry:
    cdef public object catalog_entry_id
    cdef public object context
    cdef public object port
    cdef public object key
    cdef public dict operations

@cython.final
cdef class EventEntry:
    cdef public object signalled
    cdef public list waiters

@cython.final
cdef class PortEntry:
    cdef public object queue
    cdef public bint owns_riders

cdef class HandleSpace:
    cdef public object table
