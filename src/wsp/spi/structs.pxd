# The C layout of wsp.spi.structs when compiled (Cython pure-Python mode: the
# .py source is the code, this file only declares types for it and for the
# compiled modules that cimport them).

cdef class Overlapped:
    cdef public object Internal
    cdef public object InternalHigh
    cdef public object Offset
    cdef public object OffsetHigh
    cdef public object hEvent
    cdef public object object
    cdef public object operation
    cdef public object result_flags
    cdef public object relay
    cdef object __weakref__
