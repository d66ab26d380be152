# C declarations for wsp.sim.data when compiled (pure-Python mode: data.py
# is the code).  The per-call plumbing of the data path is C-only, so the
# entries reach it without a Python-level call.

from wsp.sim.socket cimport PendingRecv, SimSocket

cdef SimSocket _socket_of(object provider, object s, str funcname)
cdef object _start(object provider, SimSocket sock, object overlapped, object routine,
                   object thread_id, object buffers, str funcname)
cdef bytes _gathered(object buffers, str funcname)
cdef list _scattered(object buffers, str funcname)
cdef tuple _send_stream(object provider, object s, SimSocket sock, object data,
                        object overlapped, object routine, object thread_id, str funcname)
cdef tuple _send_datagram(object provider, object s, SimSocket sock, object data, object to,
                          object overlapped, object routine, object thread_id, str funcname)
cdef bint _recv_flags(object flags, str funcname) except -1
cdef tuple _recv_stream(object provider, object s, SimSocket sock, list views, bint peek,
                        object overlapped, object routine, object thread_id, str funcname)
cdef _queue_recv(object provider, SimSocket sock, PendingRecv entry, str funcname)
cdef tuple _recv_datagram(object provider, object s, SimSocket sock, list views, bint peek,
                          object overlapped, object routine, object thread_id, str funcname)
