# C declarations for wsp.sim.data when compiled (pure-Python mode: data.py
# is the code).  The per-call plumbing of the data path is C-only, so the
# entries reach it without a Python-level call.

from wsp.sim.socket cimport SimSocket

cdef SimSocket _socket_of(object provider, object s, str funcname)
cdef object _start(object provider, SimSocket sock, object overlapped, object routine,
                   object thread_id, object buffers, str funcname)
cdef bytes _gathered(object buffers, str funcname)
cdef list _scattered(object buffers, str funcname)
