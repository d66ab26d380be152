# ThreadRegistry: thread handles (WSATHREADID) and per-thread APC queues
# (SPEC §5).  WPUOpenCurrentThread / WPUCloseThread and WPUQueueApc in the
# SPI engine are built on it.
#
# A ThreadRecord exists for each OS thread ident that has an open thread
# handle, a queued APC or a thread waiting for one; it is freed as soon as it
# has none of the three.  Records are found by ident through a chained hash
# table, and by thread handle through the slot payload.

cdef enum:
    REGISTRY_INITIAL_BUCKETS = 16
    APC_NODE_POOL_MAX = 1024


cdef inline size_t _ident_hash(uint64_t ident) noexcept nogil:
    # Thread idents are usually addresses (aligned, clustered): mix them.
    ident ^= ident >> 33
    ident *= <uint64_t>0xFF51AFD7ED558CCDULL
    ident ^= ident >> 33
    return <size_t>ident


cdef object _ident_arg(object ident):
    """Validate an OS thread ident argument (default: the calling thread)."""
    if ident is None:
        return PyThread_get_thread_ident()
    if not isinstance(ident, int):
        raise TypeError(f"thread ident must be an int, not {type(ident).__name__}")
    if ident < 0 or ident >= 2 ** 64:
        raise _error(WSAEINVAL)
    return ident


@cython.final
cdef class ThreadRegistry:
    """Thread handles and the APC queue of each OS thread.

    ``open(ident=None)`` returns a new thread handle for an OS thread ident
    (default: the caller); ``close``/``ident_of``/``queue_apc`` raise
    ``WinsockError(WSAEINVAL)`` for an unknown or closed handle.
    """

    def __cinit__(self):
        self._lock = 0
        slots_init(&self._slots, SLOT_INDEX_LIMIT)
        self._buckets = <ThreadRecord **>PyMem_RawCalloc(REGISTRY_INITIAL_BUCKETS,
                                                         sizeof(ThreadRecord *))
        if self._buckets == NULL:
            raise MemoryError()
        self._bucket_mask = REGISTRY_INITIAL_BUCKETS - 1
        self._nrecords = 0
        self._node_pool = NULL
        self._node_pool_len = 0
        _count(&_live_registries, 1)

    def __dealloc__(self):
        cdef size_t b
        cdef ThreadRecord *rec
        cdef ThreadRecord *next_rec
        cdef ApcNode *node
        cdef ApcNode *next_node
        if self._buckets != NULL:
            for b in range(self._bucket_mask + 1):
                rec = self._buckets[b]
                while rec != NULL:
                    next_rec = rec.hash_next
                    node = rec.apc_head
                    while node != NULL:         # APCs that never ran
                        next_node = node.next
                        Py_XDECREF(node.func)
                        Py_XDECREF(node.context)
                        PyMem_RawFree(node)
                        _count(&_apc_nodes, -1)
                        node = next_node
                    PyMem_RawFree(rec)
                    _count(&_thread_records, -1)
                    rec = next_rec
            PyMem_RawFree(self._buckets)
        node = self._node_pool
        while node != NULL:
            next_node = node.next
            PyMem_RawFree(node)
            _count(&_apc_nodes, -1)
            node = next_node
        slots_free(&self._slots)
        _count(&_live_registries, -1)

    # -- records (all called with self._lock held, without the GIL) --------

    cdef ThreadRecord *_find(self, uint64_t ident) noexcept nogil:
        cdef ThreadRecord *rec = self._buckets[_ident_hash(ident) & self._bucket_mask]
        while rec != NULL and rec.ident != ident:
            rec = rec.hash_next
        return rec

    cdef ThreadRecord *_find_or_add(self, uint64_t ident) noexcept nogil:
        cdef ThreadRecord *rec = self._find(ident)
        cdef size_t b
        if rec != NULL:
            return rec
        if self._nrecords > self._bucket_mask:
            self._rehash()              # best effort: chains just get longer on failure
        rec = <ThreadRecord *>PyMem_RawCalloc(1, sizeof(ThreadRecord))
        if rec == NULL:
            return NULL
        _count(&_thread_records, 1)
        rec.ident = ident
        b = _ident_hash(ident) & self._bucket_mask
        rec.hash_next = self._buckets[b]
        self._buckets[b] = rec
        self._nrecords += 1
        return rec

    cdef void _rehash(self) noexcept nogil:
        cdef size_t new_mask = (self._bucket_mask + 1) * 2 - 1
        cdef size_t b, nb
        cdef ThreadRecord *rec
        cdef ThreadRecord *next_rec
        cdef ThreadRecord **buckets = <ThreadRecord **>PyMem_RawCalloc(new_mask + 1,
                                                                       sizeof(ThreadRecord *))
        if buckets == NULL:
            return
        for b in range(self._bucket_mask + 1):
            rec = self._buckets[b]
            while rec != NULL:
                next_rec = rec.hash_next
                nb = _ident_hash(rec.ident) & new_mask
                rec.hash_next = buckets[nb]
                buckets[nb] = rec
                rec = next_rec
        PyMem_RawFree(self._buckets)
        self._buckets = buckets
        self._bucket_mask = new_mask

    cdef void _release_if_idle(self, ThreadRecord *rec) noexcept nogil:
        cdef ThreadRecord **link
        if rec.open_handles or rec.pending or rec.waiters != NULL:
            return
        link = &self._buckets[_ident_hash(rec.ident) & self._bucket_mask]
        while link[0] != rec:
            link = &link[0].hash_next
        link[0] = rec.hash_next
        self._nrecords -= 1
        PyMem_RawFree(rec)
        _count(&_thread_records, -1)

    cdef ThreadRecord *_record_of(self, object handle) noexcept:
        """The record behind a live thread handle, or NULL; takes self._lock
        and leaves it held on success."""
        cdef uint64_t h
        cdef Py_ssize_t i
        if not handle_value(handle, &h):
            return NULL
        wsp_lock_acquire(&self._lock)
        i = slots_find(&self._slots, h)
        if i < 0:
            wsp_lock_release(&self._lock)
            return NULL
        return <ThreadRecord *>self._slots.payload[i]

    # -- thread handles -------------------------------------------------------

    def open(self, ident=None):
        """A new thread handle for OS thread `ident` (default: the caller).

        Each call returns a different handle, even for the same thread; each
        must be closed once.
        """
        cdef uint64_t tid = _ident_arg(ident)
        cdef uint64_t handle = 0
        cdef ThreadRecord *rec
        cdef int rc = SLOT_NOMEM
        wsp_lock_acquire(&self._lock)
        rec = self._find_or_add(tid)
        if rec != NULL:
            rc = slots_acquire(&self._slots, <uintptr_t>rec, &handle)
            if rc == SLOT_OK:
                rec.open_handles += 1
            else:
                self._release_if_idle(rec)
        wsp_lock_release(&self._lock)
        if rc == SLOT_NOMEM:
            raise MemoryError()
        if rc != SLOT_OK:
            raise _error(WSAENOBUFS)
        return handle

    def close(self, handle):
        """Close a thread handle; WSAEINVAL if unknown or already closed.

        APCs already queued through it stay queued: closing a thread handle
        does not cancel work queued to the thread.
        """
        cdef uint64_t h
        cdef Py_ssize_t i = -1
        cdef ThreadRecord *rec
        if handle_value(handle, &h):
            wsp_lock_acquire(&self._lock)
            i = slots_find(&self._slots, h)
            if i >= 0:
                rec = <ThreadRecord *>self._slots.payload[i]
                slots_release(&self._slots, i)
                rec.open_handles -= 1
                self._release_if_idle(rec)
            wsp_lock_release(&self._lock)
        if i < 0:
            raise _error(WSAEINVAL)

    def ident_of(self, handle):
        """The OS thread ident behind a thread handle; WSAEINVAL if not open."""
        cdef ThreadRecord *rec = self._record_of(handle)
        cdef uint64_t ident
        if rec == NULL:
            raise _error(WSAEINVAL)
        ident = rec.ident
        wsp_lock_release(&self._lock)
        return ident

    def __contains__(self, handle):
        cdef ThreadRecord *rec = self._record_of(handle)
        if rec == NULL:
            return False
        wsp_lock_release(&self._lock)
        return True

    def __len__(self):
        """How many thread handles are open."""
        cdef size_t n
        wsp_lock_acquire(&self._lock)
        n = self._slots.live
        wsp_lock_release(&self._lock)
        return n

    # -- APCs -----------------------------------------------------------------

    def queue_apc(self, handle, func, context=None):
        """Queue ``func(context)`` to the thread behind `handle`; it runs in
        that thread's next ``run_apcs``.  Wakes the thread if it is in
        ``wait``.  WSAEINVAL for a closed handle, TypeError if `func` is not
        callable."""
        cdef ThreadRecord *rec
        cdef ApcNode *node
        cdef Waiter *woken = NULL
        if not callable(func):
            raise TypeError(f"APC function must be callable, not {type(func).__name__}")
        rec = self._record_of(handle)
        if rec == NULL:
            raise _error(WSAEINVAL)
        node = self._node_pool
        if node != NULL:
            self._node_pool = node.next
            self._node_pool_len -= 1
        else:
            node = <ApcNode *>PyMem_RawMalloc(sizeof(ApcNode))
            if node == NULL:
                wsp_lock_release(&self._lock)
                raise MemoryError()
            _count(&_apc_nodes, 1)
        Py_INCREF(func)
        Py_INCREF(context)
        node.func = <PyObject *>func
        node.context = <PyObject *>context
        node.next = NULL
        if rec.apc_tail == NULL:
            rec.apc_head = node
        else:
            rec.apc_tail.next = node
        rec.apc_tail = node
        rec.pending += 1
        woken = rec.waiters              # every thread waiting on this ident
        rec.waiters = NULL
        self._mark_woken(woken)
        wsp_lock_release(&self._lock)
        wake_list(woken)

    cdef void _mark_woken(self, Waiter *w) noexcept nogil:
        while w != NULL:
            w.state = WAITER_WOKEN
            w = w.next

    def run_apcs(self, ident=None):
        """Run, on the calling thread, every APC queued to thread `ident`
        (default: the caller), oldest first, including any queued while they
        run; return how many ran.  If an APC raises, the exception
        propagates and the APCs behind it stay queued."""
        cdef uint64_t tid = _ident_arg(ident)
        cdef ThreadRecord *rec
        cdef ApcNode *node
        cdef PyObject *func
        cdef PyObject *context
        cdef Py_ssize_t ran = 0
        while True:
            wsp_lock_acquire(&self._lock)
            rec = self._find(tid)
            if rec == NULL or rec.apc_head == NULL:
                wsp_lock_release(&self._lock)
                return ran
            node = rec.apc_head
            rec.apc_head = node.next
            if rec.apc_head == NULL:
                rec.apc_tail = NULL
            rec.pending -= 1
            func = node.func
            context = node.context
            if self._node_pool_len < APC_NODE_POOL_MAX:
                node.next = self._node_pool
                self._node_pool = node
                self._node_pool_len += 1
                node = NULL
            self._release_if_idle(rec)
            wsp_lock_release(&self._lock)
            if node != NULL:
                PyMem_RawFree(node)
                _count(&_apc_nodes, -1)
            ran += 1
            _steal(func)(_steal(context))

    def pending(self, ident=None):
        """How many APCs are queued to thread `ident` (default: the caller)."""
        cdef uint64_t tid = _ident_arg(ident)
        cdef ThreadRecord *rec
        cdef size_t n = 0
        wsp_lock_acquire(&self._lock)
        rec = self._find(tid)
        if rec != NULL:
            n = rec.pending
        wsp_lock_release(&self._lock)
        return n

    def wait(self, ident=None, timeout=None):
        """Block without the GIL until an APC is queued to thread `ident`
        (default: the caller) or `timeout` seconds pass (None: forever).
        Return True if an APC is pending.  Does not run the APCs."""
        cdef uint64_t tid = _ident_arg(ident)
        cdef int64_t deadline = deadline_from_timeout(timeout)
        cdef Waiter w
        cdef int outcome
        w.sem = NULL
        try:
            while True:
                with nogil:
                    outcome = self._wait_once(tid, deadline, &w)
                if outcome == 0:
                    return True
                if outcome == 1:
                    return False
                if outcome == 3:
                    raise MemoryError()
                PyErr_CheckSignals()     # PARK_INTERRUPTED: let Ctrl-C through
        finally:
            if w.sem != NULL:
                parking_give(w.sem)

    cdef int _wait_once(self, uint64_t tid, int64_t deadline, Waiter *w) noexcept nogil:
        """0: an APC is pending; 1: timed out; 2: interrupted; 3: no memory."""
        cdef ThreadRecord *rec
        cdef int result
        while True:
            wsp_lock_acquire(&self._lock)
            rec = self._find(tid)
            if rec != NULL and rec.pending:
                wsp_lock_release(&self._lock)
                return 0
            if deadline >= 0 and wsp_monotonic_us() >= deadline:
                wsp_lock_release(&self._lock)
                return 1
            rec = self._find_or_add(tid)
            if rec == NULL:
                wsp_lock_release(&self._lock)
                return 3
            if w.sem == NULL:
                wsp_lock_release(&self._lock)   # never allocate an OS lock under ours
                w.sem = parking_take()
                if w.sem == NULL:
                    return 3
                continue
            w.state = WAITER_WAITING
            waiters_push(&rec.waiters, w)
            wsp_lock_release(&self._lock)
            result = park(w, &self._lock, &rec.waiters, deadline)
            # The record may have gone idle while we were off its list.
            wsp_lock_acquire(&self._lock)
            rec = self._find(tid)
            if rec != NULL:
                self._release_if_idle(rec)
            wsp_lock_release(&self._lock)
            if result == PARK_INTERRUPTED:
                return 2
            # Woken or timed out: loop to re-check (and to give up at the
            # deadline only after a final look at the queue).
