# Declarations for wsp._core: the C layouts of the handle table, the thread
# registry and the completion queue, and the C functions the .pxi pieces share.
#
# Only integers live in these structures.  Python objects (socket contexts,
# APC callables) are stored as owned PyObject* next to them and are only ever
# INCREF'd while a wsp_lock_t is held; DECREFs happen after it is released,
# because a DECREF can run arbitrary Python code (a __del__) that might call
# back into the same structure.

from libc.stdint cimport uint32_t, uint64_t, int64_t, uintptr_t
from cpython.object cimport PyObject


cdef extern from "includes/wsp_sync.h" nogil:
    ctypedef int wsp_lock_t
    void wsp_lock_acquire(wsp_lock_t *l) noexcept
    void wsp_lock_release(wsp_lock_t *l) noexcept
    int64_t wsp_monotonic_us() noexcept


cdef extern from "pythread.h" nogil:
    ctypedef void *PyThread_type_lock
    ctypedef enum PyLockStatus:
        PY_LOCK_FAILURE
        PY_LOCK_ACQUIRED
        PY_LOCK_INTR
    PyThread_type_lock PyThread_allocate_lock() noexcept
    void PyThread_free_lock(PyThread_type_lock) noexcept
    int PyThread_acquire_lock(PyThread_type_lock, int waitflag) noexcept
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock, long long microseconds,
                                             int intr_flag) noexcept
    void PyThread_release_lock(PyThread_type_lock) noexcept
    unsigned long PyThread_get_thread_ident() noexcept
    long long PY_TIMEOUT_MAX


# ---------------------------------------------------------------- slot table
# Handle values: ((index << SLOT_GEN_BITS) | generation) << 2.
#  - multiples of 4 like Windows SOCKET values, never 0 (generation >= 1),
#    below 2**55 and so never INVALID_SOCKET;
#  - a slot's generation goes up by one each time the slot is reused and
#    wraps from 2**21 - 1 back to 1, so a closed handle's value can only come
#    back after 2**21 - 1 reuses of that very slot: more than the 2**20
#    creations ``docs/guide/spi-model.rst, "The core"`` asks for;
#  - the generation sits in the low bits so that small tables hand out small
#    numbers (slot 0 gives 4, 8, 12, ...; every handle of the first 128 slots
#    is below 2**30).  CPython builds and reads such one-digit ints about
#    7 ns faster than two-digit ones, and every create/query/close pays that.
cdef enum:
    SLOT_INDEX_BITS = 32
    SLOT_GEN_BITS = 21

cdef enum SlotStatus:
    SLOT_OK = 0
    SLOT_FULL = 1
    SLOT_NOMEM = 2

cdef struct SlotTable:
    uint64_t *state        # per slot: generation << 1 | live bit
    uint64_t *payload      # per slot: an integer (or an owned PyObject*)
    uint32_t *free_stack   # indices of free slots, reused last-in first-out
    size_t nfree
    size_t used            # slots [0, used) have been handed out at least once
    size_t capacity        # allocated length of the three arrays
    size_t live            # slots currently holding a handle
    size_t max_live        # the table's limit (max_handles)


# ------------------------------------------------------------ parked waiters
# A thread that must block pushes a Waiter (on its own C stack) onto the
# waiter list of the structure it waits on, releases the structure's spinlock,
# then sleeps on its parking lock without the GIL.  Whoever satisfies it sets
# `state` (and, for completion ports, hands it `packet` directly) under the
# spinlock, unlinks it, releases the spinlock and only then releases `sem`.
cdef enum WaiterState:
    WAITER_WAITING = 0
    WAITER_WOKEN = 1       # thread registry: an APC was queued
    WAITER_DELIVERED = 2   # completion queue: `packet` holds a packet for it
    WAITER_CLOSED = 3      # completion queue: the queue was closed
    WAITER_ENDED = 4       # thread registry: the thread lifetime it waited on ended

cdef enum ParkResult:
    PARK_WOKEN = 0
    PARK_TIMEOUT = 1
    PARK_INTERRUPTED = 2

cdef struct Packet:
    uint64_t status
    uint64_t nbytes
    uint64_t key
    uint64_t overlapped_id

cdef struct Waiter:
    Waiter *next
    PyThread_type_lock sem   # held while idle; released once to wake the waiter
    int state
    Packet packet


# ----------------------------------------------------------- thread registry
cdef struct ApcNode:
    ApcNode *next
    PyObject *func           # owned reference
    PyObject *context        # owned reference

cdef struct ThreadRecord:    # one per thread lifetime: an ident in use, or an ended one
    ThreadRecord *hash_next  # bucket chain (live records only)
    uint64_t ident
    size_t open_handles      # thread handles open on this record
    size_t pending           # APCs queued and not yet run
    ApcNode *apc_head
    ApcNode *apc_tail
    Waiter *waiters
    bint ended               # end_thread() detached it from its ident: its APCs never
                             # run; freed with its last handle (not in the buckets)


cdef class HandleTable:
    cdef wsp_lock_t _lock
    cdef SlotTable _slots

    cdef int _create_batch(self, Py_ssize_t count, uintptr_t payload,
                           uint64_t *out) noexcept nogil
    cdef Py_ssize_t _close_batch(self, Py_ssize_t n, uint64_t *values,
                                 PyObject **contexts) noexcept nogil


cdef class ThreadRegistry:
    cdef object __weakref__
    cdef object _local               # threading.local(): per-thread exit guards
    cdef wsp_lock_t _lock
    cdef SlotTable _slots            # payload: ThreadRecord*
    cdef ThreadRecord **_buckets
    cdef size_t _bucket_mask
    cdef size_t _nrecords
    cdef ApcNode *_node_pool
    cdef size_t _node_pool_len
    # Idents of threads that hold an exit guard in self._local: an open
    # addressing set (0 = empty slot; a running thread's ident is never 0),
    # so that open() for the calling thread skips the thread-local lookup.
    # end_thread() removes the ident, so an entry never outlives its thread.
    cdef uint64_t *_guarded
    cdef size_t _guarded_mask
    cdef size_t _guarded_len

    cdef ThreadRecord *_find(self, uint64_t ident) noexcept nogil
    cdef ThreadRecord *_find_or_add(self, uint64_t ident) noexcept nogil
    cdef void _rehash(self) noexcept nogil
    cdef void _release_if_idle(self, ThreadRecord *rec) noexcept nogil
    cdef void _unlink(self, ThreadRecord *rec) noexcept nogil
    cdef void _recycle_nodes(self, ApcNode *head) noexcept
    cdef void _free_ended(self, ThreadRecord *rec) noexcept
    cdef void _guard_current_thread(self, uint64_t tid) except *
    cdef bint _guarded_has(self, uint64_t ident) noexcept nogil
    cdef void _guarded_add(self, uint64_t ident) noexcept nogil
    cdef void _guarded_discard(self, uint64_t ident) noexcept nogil
    cdef ThreadRecord *_record_of(self, object handle) noexcept
    cdef void _mark_woken(self, Waiter *w) noexcept nogil
    cdef int _wait_once(self, uint64_t tid, int64_t deadline, Waiter *w) noexcept nogil


cdef class CompletionQueue:
    cdef wsp_lock_t _lock
    cdef Packet *_ring
    cdef size_t _head
    cdef size_t _count
    cdef size_t _mask                # capacity - 1; capacity is a power of two
    cdef Waiter *_waiters
    cdef bint _closed
    cdef unsigned long long _posted  # packets ever accepted (a clock's readiness check)
    cdef long long _wakes            # wake_waiters() calls (a get's `since`)

    cdef int _reserve(self, size_t needed) noexcept nogil
    cdef Py_ssize_t _take(self, Packet *out, Py_ssize_t limit) noexcept nogil
    cdef int _deliver(self, Packet *packets, Py_ssize_t n) noexcept nogil
    cdef Py_ssize_t _take_into(self, Packet *out, Py_ssize_t limit, bint *closed) noexcept
    cdef int _raise_post_error(self, int rc) except -1
    cdef bint _wait_first(self, int64_t deadline, Packet *out, long long since) except -1
    cdef int _wait_once(self, int64_t deadline, Waiter *w, Packet *out, long long since) noexcept nogil
