# ThreadRegistry: thread handles (WSATHREADID) and per-thread APC queues
# (``docs/guide/spi-model.rst, "The core"``).  WPUOpenCurrentThread / WPUCloseThread and
# WPUQueueApc in the SPI engine are built on it.
#
# A thread handle names one thread *lifetime*, not a number: the OS reuses
# thread idents as soon as a thread has ended.  A ThreadRecord is one such
# lifetime.  The live record of an ident exists while it has an open thread
# handle, a queued APC or a thread waiting for one, and is freed as soon as
# it has none of the three; live records are found by ident through a
# chained hash table, and by thread handle through the slot payload.
#
# end_thread(ident) ends the live record of `ident`: it leaves the hash
# table (the next open/queue/run/wait for `ident` starts a fresh record),
# is marked ended, its waiters are woken, and its APCs never run.  An ended
# record is reachable only through its handles and is freed, with the APCs
# still on it, when the last of them is closed.  A thread that opens a
# handle for itself gets a guard in a per-registry threading.local; CPython
# drops a finished thread's threading.local data in that thread, before its
# ident can be reused, and the guard's finalizer calls end_thread then.

cdef enum:
    REGISTRY_INITIAL_BUCKETS = 16
    APC_NODE_POOL_MAX = 1024


cdef inline size_t _ident_hash(uint64_t ident) noexcept nogil:
    # Thread idents are usually addresses (aligned, clustered): mix them.
    ident ^= ident >> 33
    ident *= <uint64_t>0xFF51AFD7ED558CCDULL
    ident ^= ident >> 33
    return <size_t>ident


cdef uint64_t _ident_arg(object ident) except? 0xFFFFFFFFFFFFFFFF:
    """Validate an OS thread ident argument (default: the calling thread).

    An int subclass is read by its digits: no comparison operator of the
    subclass runs."""
    if ident is None:
        return PyThread_get_thread_ident()
    if not isinstance(ident, int):
        raise TypeError(f"thread ident must be an int, not {type(ident).__name__}")
    try:
        return <uint64_t>ident
    except OverflowError:
        raise _error(WSAEINVAL) from None


cdef void _free_apc_chain(ApcNode *node) noexcept:
    """Free APC nodes and drop their references (registry teardown only:
    nothing else can reach the registry then)."""
    cdef ApcNode *next_node
    while node != NULL:
        next_node = node.next
        Py_XDECREF(node.func)
        Py_XDECREF(node.context)
        PyMem_RawFree(node)
        _count(&_apc_nodes, -1)
        node = next_node


@cython.final
cdef class _ThreadEndGuard:
    """Lives in a registry's threading.local for the one thread that opened
    a handle for itself; when that thread ends, CPython drops it there and
    this calls ``registry.end_thread(ident)``."""
    cdef object _registry            # weakref.ref to the ThreadRegistry
    cdef object _ident

    def __cinit__(self, registry_ref, ident):
        self._registry = registry_ref
        self._ident = ident

    def __dealloc__(self):
        # Collected in a cycle (its threading.local with the registry), the
        # garbage collector may have cleared _registry already: nothing to
        # report then, the registry is going too.
        ref = self._registry
        registry = ref() if ref is not None else None
        if registry is not None:
            try:
                registry.end_thread(self._ident)
            except BaseException:    # at interpreter exit, say: nothing to report to
                pass


@cython.final
cdef class ThreadRegistry:
    """Thread handles and the APC queue of each thread lifetime.

    ``open(ident=None)`` returns a new thread handle for an OS thread ident
    (default: the caller); ``close``/``ident_of``/``queue_apc`` raise
    ``WinsockError(WSAEINVAL)`` for an unknown or closed handle.  A handle
    names one lifetime of its thread: once that thread has ended
    (``end_thread``, called by itself at the exit of a thread that opened a
    handle for itself), a later thread that gets the same ident from the OS
    starts afresh and never runs APCs queued to the one before.
    """

    def __cinit__(self):
        self._local = _thread_local()
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
        self._guarded = NULL
        self._guarded_mask = 0
        self._guarded_len = 0
        _count(&_live_registries, 1)

    def __dealloc__(self):
        cdef size_t b
        cdef ThreadRecord *rec
        cdef ThreadRecord *next_rec
        cdef ApcNode *node
        cdef ApcNode *next_node
        if self._buckets == NULL:
            return                       # __cinit__ failed: nothing was counted
        # First the ended records: off the buckets, each is reachable from its
        # open handles only and is freed with the last of them.  (Before the
        # live ones are freed: the payload of every live slot is read here.)
        for b in range(self._slots.used):
            if self._slots.state[b] & 1:
                rec = <ThreadRecord *>self._slots.payload[b]
                if rec.ended:
                    rec.open_handles -= 1
                    if rec.open_handles == 0:
                        _free_apc_chain(rec.apc_head)
                        PyMem_RawFree(rec)
                        _count(&_thread_records, -1)
        for b in range(self._bucket_mask + 1):
            rec = self._buckets[b]
            while rec != NULL:
                next_rec = rec.hash_next
                _free_apc_chain(rec.apc_head)    # APCs that never ran
                PyMem_RawFree(rec)
                _count(&_thread_records, -1)
                rec = next_rec
        PyMem_RawFree(self._buckets)
        PyMem_RawFree(self._guarded)
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

    cdef void _unlink(self, ThreadRecord *rec) noexcept nogil:
        """Take a live record off its bucket chain."""
        cdef ThreadRecord **link = &self._buckets[_ident_hash(rec.ident) & self._bucket_mask]
        while link[0] != rec:
            link = &link[0].hash_next
        link[0] = rec.hash_next
        rec.hash_next = NULL
        self._nrecords -= 1

    cdef void _release_if_idle(self, ThreadRecord *rec) noexcept nogil:
        """Free a live record that has no handle, APC or waiter left."""
        if rec.open_handles or rec.pending or rec.waiters != NULL:
            return
        self._unlink(rec)
        PyMem_RawFree(rec)
        _count(&_thread_records, -1)

    cdef void _recycle_nodes(self, ApcNode *head) noexcept:
        """Drop the references of a chain of APC nodes that will never run
        and give the nodes back to the pool (or free them).  Called with the
        GIL and *without* self._lock: dropping a reference may run Python
        code (a __del__) that calls back into this registry.  The chain
        belongs to the caller alone."""
        cdef ApcNode *node = head
        cdef ApcNode *nxt
        cdef PyObject *func
        cdef PyObject *context
        while node != NULL:
            func = node.func
            context = node.context
            node.func = NULL
            node.context = NULL
            Py_XDECREF(func)
            Py_XDECREF(context)
            node = node.next
        while head != NULL:
            wsp_lock_acquire(&self._lock)
            while head != NULL and self._node_pool_len < APC_NODE_POOL_MAX:
                nxt = head.next
                head.next = self._node_pool
                self._node_pool = head
                self._node_pool_len += 1
                head = nxt
            wsp_lock_release(&self._lock)
            while head != NULL:
                nxt = head.next
                PyMem_RawFree(head)
                _count(&_apc_nodes, -1)
                head = nxt

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
        must be closed once.  The handle names the thread's current lifetime
        (see ``end_thread``).  When the handle is for the calling thread
        (`ident` None or ``threading.get_ident()``), the registry also
        arranges to learn when this thread ends: a guard kept in a
        per-registry ``threading.local`` (made once per thread) calls
        ``end_thread(ident)`` when CPython tears down the thread's
        thread-local data at its exit -- before the OS can hand the ident to
        a new thread.  Opening for another thread's ident sets no guard.
        """
        cdef uint64_t tid = _ident_arg(ident)
        cdef bint mine = tid == PyThread_get_thread_ident()
        cdef uint64_t handle = 0
        cdef ThreadRecord *rec
        cdef int rc = SLOT_NOMEM
        cdef bint need_guard = False
        wsp_lock_acquire(&self._lock)
        rec = self._find_or_add(tid)
        if rec != NULL:
            rc = slots_acquire(&self._slots, <uintptr_t>rec, &handle)
            if rc == SLOT_OK:
                rec.open_handles += 1
                need_guard = mine and not self._guarded_has(tid)
            else:
                self._release_if_idle(rec)
        wsp_lock_release(&self._lock)
        if rc == SLOT_NOMEM:
            raise MemoryError()
        if rc != SLOT_OK:
            raise _error(WSAENOBUFS)
        if need_guard:
            try:
                self._guard_current_thread(tid)
            except BaseException:
                self.close(handle)
                raise
        return handle

    cdef void _guard_current_thread(self, uint64_t tid) except *:
        """Make sure the calling thread (ident `tid`) has its exit guard in
        this registry's threading.local, and note its ident in the guarded
        set (so later opens skip the thread-local lookup)."""
        local = self._local
        if getattr(local, "guard", None) is None:
            local.guard = _ThreadEndGuard(_weakref(self), tid)
        wsp_lock_acquire(&self._lock)
        self._guarded_add(tid)
        wsp_lock_release(&self._lock)

    # -- the guarded-ident set (self._lock held, no GIL) ----------------------

    cdef bint _guarded_has(self, uint64_t ident) noexcept nogil:
        cdef size_t i
        if self._guarded == NULL:
            return False
        i = _ident_hash(ident) & self._guarded_mask
        while self._guarded[i] != 0:
            if self._guarded[i] == ident:
                return True
            i = (i + 1) & self._guarded_mask
        return False

    cdef void _guarded_add(self, uint64_t ident) noexcept nogil:
        """Add `ident` (best effort: if memory runs out the set just misses
        it, and open() keeps asking the thread-local)."""
        cdef size_t i, j, cap, new_mask
        cdef uint64_t *table
        if ident == 0 or self._guarded_has(ident):
            return
        if self._guarded == NULL or (self._guarded_len + 1) * 2 > self._guarded_mask + 1:
            cap = 16 if self._guarded == NULL else (self._guarded_mask + 1) * 2
            table = <uint64_t *>PyMem_RawCalloc(cap, sizeof(uint64_t))
            if table == NULL:
                return
            new_mask = cap - 1
            if self._guarded != NULL:
                for i in range(self._guarded_mask + 1):
                    if self._guarded[i] != 0:
                        j = _ident_hash(self._guarded[i]) & new_mask
                        while table[j] != 0:
                            j = (j + 1) & new_mask
                        table[j] = self._guarded[i]
                PyMem_RawFree(self._guarded)
            self._guarded = table
            self._guarded_mask = new_mask
        i = _ident_hash(ident) & self._guarded_mask
        while self._guarded[i] != 0:
            i = (i + 1) & self._guarded_mask
        self._guarded[i] = ident
        self._guarded_len += 1

    cdef void _guarded_discard(self, uint64_t ident) noexcept nogil:
        """Remove `ident`, closing the gap by shifting later entries of its
        probe run back (linear probing without tombstones)."""
        cdef size_t mask = self._guarded_mask
        cdef size_t i, j, home
        cdef bint stays
        if self._guarded == NULL:
            return
        i = _ident_hash(ident) & mask
        while self._guarded[i] != ident:
            if self._guarded[i] == 0:
                return                   # not there
            i = (i + 1) & mask
        self._guarded[i] = 0
        self._guarded_len -= 1
        j = i
        while True:
            j = (j + 1) & mask
            if self._guarded[j] == 0:
                return
            home = _ident_hash(self._guarded[j]) & mask
            # The entry at j may fill the hole at i unless its home slot lies
            # cyclically in (i, j]: then its probe run does not pass i.
            if i <= j:
                stays = i < home <= j
            else:
                stays = home > i or home <= j
            if not stays:
                self._guarded[i] = self._guarded[j]
                self._guarded[j] = 0
                i = j

    def duplicate(self, handle):
        """A new thread handle naming the same thread lifetime as `handle`
        (like DuplicateHandle): APCs queued through either reach the same
        queue, and ``ended`` answers alike for both.  Each must be closed
        once.  WSAEINVAL if `handle` is unknown or closed, WSAENOBUFS if the
        registry is full."""
        cdef ThreadRecord *rec = self._record_of(handle)
        cdef uint64_t new_handle = 0
        cdef int rc
        if rec == NULL:
            raise _error(WSAEINVAL)
        rc = slots_acquire(&self._slots, <uintptr_t>rec, &new_handle)
        if rc == SLOT_OK:
            rec.open_handles += 1
        wsp_lock_release(&self._lock)
        if rc == SLOT_NOMEM:
            raise MemoryError()
        if rc != SLOT_OK:
            raise _error(WSAENOBUFS)
        return new_handle

    def close(self, handle):
        """Close a thread handle; WSAEINVAL if unknown or already closed.

        APCs already queued through it stay queued: closing a thread handle
        does not cancel work queued to the thread.  Closing the last handle
        of an ended lifetime frees it and drops the APCs left on it (they
        never run).
        """
        cdef uint64_t h
        cdef Py_ssize_t i = -1
        cdef ThreadRecord *rec
        cdef ThreadRecord *dead = NULL
        if handle_value(handle, &h):
            wsp_lock_acquire(&self._lock)
            i = slots_find(&self._slots, h)
            if i >= 0:
                rec = <ThreadRecord *>self._slots.payload[i]
                slots_release(&self._slots, i)
                rec.open_handles -= 1
                if not rec.ended:
                    self._release_if_idle(rec)
                elif rec.open_handles == 0:
                    dead = rec           # unreachable now: freed below, unlocked
            wsp_lock_release(&self._lock)
        if i < 0:
            raise _error(WSAEINVAL)
        if dead != NULL:
            self._free_ended(dead)

    cdef void _free_ended(self, ThreadRecord *rec) noexcept:
        """Free an ended record nobody can reach any more, and the APCs on it
        (their references are dropped without self._lock)."""
        cdef ApcNode *nodes = rec.apc_head
        PyMem_RawFree(rec)
        _count(&_thread_records, -1)
        self._recycle_nodes(nodes)

    def end_thread(self, ident):
        """End the current lifetime of OS thread `ident`; return how many
        APCs it had queued.

        The record of `ident` is detached from the ident -- a later
        ``open``/``run_apcs``/``wait``/``pending`` for `ident` starts a
        fresh, empty record -- and marked ended: its queued APCs never run,
        and APCs queued later through its handles are accepted and never run
        either.  Threads parked in ``wait`` on it wake and return False.  The
        ended record is freed, and the APCs on it are dropped (outside the
        registry's lock: dropping may run Python code), when its last handle
        is closed -- at once if it has none.  The return value counts the
        APCs that were queued when it ended: discarded at once if no handle
        was open, else left stranded until the last handle is closed
        (``pending_of`` still counts them).  Ending an ident that has no
        record is a no-op that returns 0.

        A thread that opened a handle for itself calls this for its own ident
        when it ends (see ``open``); call it directly when a thread's end is
        known some other way.
        """
        cdef uint64_t tid = _ident_arg(ident)
        cdef ThreadRecord *rec
        cdef Waiter *woken
        cdef Waiter *w
        cdef size_t stranded = 0
        cdef bint free_now = False
        wsp_lock_acquire(&self._lock)
        self._guarded_discard(tid)       # a new thread with this ident needs its own guard
        rec = self._find(tid)
        if rec == NULL:
            wsp_lock_release(&self._lock)
            return 0
        self._unlink(rec)
        rec.ended = True
        stranded = rec.pending
        woken = rec.waiters
        rec.waiters = NULL
        w = woken
        while w != NULL:
            w.state = WAITER_ENDED
            w = w.next
        free_now = rec.open_handles == 0
        wsp_lock_release(&self._lock)
        wake_list(woken)
        if free_now:
            self._free_ended(rec)
        return stranded

    def ended(self, handle):
        """Whether the thread lifetime that `handle` names is over (see
        ``end_thread``); WSAEINVAL if `handle` is unknown or closed."""
        cdef ThreadRecord *rec = self._record_of(handle)
        cdef bint result
        if rec == NULL:
            raise _error(WSAEINVAL)
        result = rec.ended
        wsp_lock_release(&self._lock)
        return result

    def ident_of(self, handle):
        """The OS thread ident behind a thread handle (still the old ident
        once that lifetime has ended); WSAEINVAL if not open."""
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
        """Queue ``func(context)`` to the thread lifetime behind `handle`; it
        runs in that thread's next ``run_apcs``.  Wakes the thread if it is
        in ``wait``.  If that lifetime has ended the APC is accepted and
        never runs (it is dropped with the lifetime's last handle).
        WSAEINVAL for a closed handle, TypeError if `func` is not callable."""
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
            wsp_lock_release(&self._lock)   # never allocate under our lock
            node = <ApcNode *>PyMem_RawMalloc(sizeof(ApcNode))
            if node == NULL:
                raise MemoryError()
            _count(&_apc_nodes, 1)
            rec = self._record_of(handle)   # it may have been closed meanwhile
            if rec == NULL:
                PyMem_RawFree(node)
                _count(&_apc_nodes, -1)
                raise _error(WSAEINVAL)
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
        woken = rec.waiters              # every thread waiting on this lifetime
        rec.waiters = NULL
        self._mark_woken(woken)
        wsp_lock_release(&self._lock)
        wake_list(woken)

    cdef void _mark_woken(self, Waiter *w) noexcept nogil:
        while w != NULL:
            w.state = WAITER_WOKEN
            w = w.next

    def run_apcs(self, ident=None):
        """Run, on the calling thread, every APC queued to the current
        lifetime of thread `ident` (default: the caller), oldest first,
        including any queued while they run; return how many ran.  If an APC
        raises, the exception propagates and the APCs behind it stay
        queued."""
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
        """How many APCs are queued to the current lifetime of thread `ident`
        (default: the caller)."""
        cdef uint64_t tid = _ident_arg(ident)
        cdef ThreadRecord *rec
        cdef size_t n = 0
        wsp_lock_acquire(&self._lock)
        rec = self._find(tid)
        if rec != NULL:
            n = rec.pending
        wsp_lock_release(&self._lock)
        return n

    def pending_of(self, handle):
        """How many APCs are queued on the thread lifetime behind `handle`
        (ended or not: an ended one keeps its stranded APCs until its last
        handle is closed); WSAEINVAL if `handle` is unknown or closed."""
        cdef ThreadRecord *rec = self._record_of(handle)
        cdef size_t n
        if rec == NULL:
            raise _error(WSAEINVAL)
        n = rec.pending
        wsp_lock_release(&self._lock)
        return n

    def wait(self, ident=None, timeout=None):
        """Block without the GIL until an APC is queued to thread `ident` (default: the caller) or
        `timeout` seconds pass (None: forever; see ``docs/guide/spi-model.rst, "The core"`` for the
        accepted values).  Return True if an APC is pending, False on timeout or when the lifetime
        waited on ends (``end_thread``).  Does not run the APCs."""
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
        """0: an APC is pending; 1: timed out or the lifetime ended;
        2: interrupted; 3: no memory."""
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
            if w.sem == NULL:
                wsp_lock_release(&self._lock)   # never allocate an OS lock under ours
                w.sem = parking_take()
                if w.sem == NULL:
                    return 3
                continue
            rec = self._find_or_add(tid)
            if rec == NULL:
                wsp_lock_release(&self._lock)
                return 3
            w.state = WAITER_WAITING
            waiters_push(&rec.waiters, w)
            _count(&_parked, 1)              # registered: queue_apc/end_thread find it
            wsp_lock_release(&self._lock)
            result = park(w, &self._lock, &rec.waiters, deadline)
            _count(&_parked, -1)
            # The record may have gone idle while we were off its list (or
            # been ended and freed: then `rec` must not be touched).
            wsp_lock_acquire(&self._lock)
            rec = self._find(tid)
            if rec != NULL:
                self._release_if_idle(rec)
            wsp_lock_release(&self._lock)
            if result == PARK_INTERRUPTED:
                return 2
            if result == PARK_WOKEN and w.state == WAITER_ENDED:
                return 1
            # Woken or timed out: loop to re-check (and to give up at the
            # deadline only after a final look at the queue).
