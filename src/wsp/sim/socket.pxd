# C layout of wsp.sim.socket when compiled (pure-Python mode: socket.py is
# the code; this file declares its types, for it and for the compiled data
# path in wsp.sim.data, which calls these methods without a Python call).

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.string cimport memmove
from wsp.spi.engine cimport Engine

cdef bint _flat(object obj) except -1
cpdef copy_bytes(object dst, Py_ssize_t dst_start, object src, Py_ssize_t src_start,
                 Py_ssize_t n)

@cython.final
cdef class PendingRecv:
    cdef public object buffers
    cdef public Py_ssize_t capacity
    cdef public object op
    cdef public bint peek
    cdef public bint done
    cdef public Py_ssize_t nbytes
    cdef public int error
    cdef public object source
    cdef public int flags
    cpdef Py_ssize_t fill(self, object data, Py_ssize_t start=*) except -1

@cython.final
cdef class PendingSend:
    cdef public object data
    cdef public Py_ssize_t offset
    cdef public object op
    cdef public bint done
    cdef public int error

cdef class SimSocket:
    cdef public object network
    cdef public int kind
    cdef public object owner
    cdef public object handle
    cdef public object cond
    cdef public Py_ssize_t watchers
    cdef public object entry
    cdef public Engine engine
    cdef public object local
    cdef public object remote
    cdef public bint bound
    cdef public str state
    cdef public SimSocket peer
    cdef public Connection connection
    cdef public SimSocket listener
    cdef public object backlog
    cdef public object accept_queue
    cdef public bint nonblocking
    cdef public object linger_onoff
    cdef public object linger_seconds
    cdef public bint reuseaddr
    cdef public object sndbuf
    cdef public object rcvbuf
    cdef public object so_error
    cdef public object connect_error
    cdef public object accept_requests
    cdef public object disconnect_op
    cdef public bytearray recv_buf
    cdef public bytearray send_buf
    cdef public object pending_recvs
    cdef public object pending_sends
    cdef public bint shut_send
    cdef public bint shutdown_send
    cdef public bint shut_recv
    cdef public bint fin_queued
    cdef public bint fin_sent
    cdef public bint eof
    cdef public int reset_error
    cdef public bint rst_owed
    cdef public bint handle_closed
    cdef public bint interrupted
    cdef public object dgrams
    cdef public object dgram_bytes
    cdef public object event
    cdef public object event_mask
    cdef public object armed
    cdef public dict net_events
    cdef public object on_event
    cdef public object timing
    cdef public bint direct
    cdef object __weakref__

    cpdef post(self, object fd, object error=*)
    cpdef rearm(self, object fd)
    cpdef bint writable(self) except -1
    cpdef wake(self)
    cpdef pump(self)
    cpdef pump_now(self)
    cpdef Py_ssize_t accept_bytes(self, object data, Connection conn) except -1
    cpdef receive_fin(self)
    cpdef Py_ssize_t consume(self, PendingRecv entry) except -1
    cpdef finish_recv(self, PendingRecv entry, Py_ssize_t nbytes, int error, bint notify=*)
    cpdef finish_send(self, PendingSend entry, int error, bint notify=*)

@cython.final
cdef class Connection:
    cdef public object network
    cdef public SimSocket client
    cdef public SimSocket server
    cdef public bint held
    cdef public object drop_next
    cdef public bint closed
    cdef public object tap
    cdef object __weakref__
