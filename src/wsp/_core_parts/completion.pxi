# CompletionQueue: the packet queue of an I/O completion port
# (``docs/guide/spi-model.rst, "The core"``).
#
# Packets are four unsigned 64-bit integers in a growable FIFO ring.  When a
# thread is parked in get(), post() hands the packet straight to it instead
# of queueing it, so a woken getter never races another getter for its
# packet; parked getters are therefore only ever waiting on an empty ring,
# and packets leave the port in the order they were posted.  The most
# recently parked getter is served first, as Windows does for completion
# port waiters (its cache is warmest).

cdef enum:
    RING_INITIAL_CAPACITY = 64
    STACK_PACKETS = 64           # batches up to this size need no allocation

cdef enum GetOutcome:
    GOT_PACKET = 0
    GET_TIMEOUT = 1
    GET_CLOSED = 2
    GET_INTERRUPTED = 3
    GET_NOMEM = 4


cdef inline tuple _packet_tuple(Packet *p):
    return (p.status, p.nbytes, p.key, p.overlapped_id)


cdef int _packet_from(object item, Packet *out) except -1:
    """Parse one (status, nbytes, key, overlapped_id) packet of post_many."""
    cdef tuple t
    if type(item) is tuple:
        t = <tuple>item
    else:
        try:
            t = tuple(item)
        except TypeError:
            raise TypeError("each packet must be a (status, nbytes, key, overlapped_id) "
                            f"sequence, not {type(item).__name__}") from None
    if len(t) != 4:
        raise TypeError("each packet must have 4 fields (status, nbytes, key, "
                        f"overlapped_id), not {len(t)}")
    out.status = u64_arg(t[0])
    out.nbytes = u64_arg(t[1])
    out.key = u64_arg(t[2])
    out.overlapped_id = u64_arg(t[3])
    return 0


@cython.final
cdef long long _since_arg(object since) except -2:
    """A get's `since`: None -> -1 (no check), else the int it is."""
    if since is None:
        return -1
    if type(since) is not int or since < 0:
        raise TypeError("since must be None or a value of CompletionQueue.wakes")
    return since


cdef class CompletionQueue:
    """The queue of an I/O completion port: FIFO packets
    ``(status, nbytes, key, overlapped_id)`` of unsigned 64-bit integers.

    Non-integers raise TypeError, out-of-range values WinsockError(WSAEINVAL);
    posting to a closed queue raises WinsockError(WSA_INVALID_HANDLE).
    """

    def __cinit__(self):
        self._lock = 0
        self._ring = <Packet *>PyMem_RawMalloc(RING_INITIAL_CAPACITY * sizeof(Packet))
        if self._ring == NULL:
            raise MemoryError()
        self._mask = RING_INITIAL_CAPACITY - 1
        self._head = 0
        self._count = 0
        self._waiters = NULL
        self._closed = False
        self._posted = 0
        self._wakes = 0
        _count(&_live_queues, 1)

    def __dealloc__(self):
        # No waiter can be parked here: a parked get() holds a reference.
        if self._ring == NULL:
            return                       # __cinit__ failed: nothing was counted
        PyMem_RawFree(self._ring)
        _count(&_live_queues, -1)

    # -- ring (self._lock held, no GIL) ----------------------------------------

    cdef int _reserve(self, size_t needed) noexcept nogil:
        """Grow the ring to hold `needed` packets; SLOT_OK or SLOT_NOMEM."""
        cdef size_t cap = self._mask + 1
        cdef size_t new_cap = cap
        cdef size_t i
        cdef Packet *ring
        if needed <= cap:
            return SLOT_OK
        if needed > (<size_t>-1) // (2 * sizeof(Packet)):
            return SLOT_NOMEM            # new_cap * sizeof(Packet) would wrap
        while new_cap < needed:
            new_cap *= 2
        ring = <Packet *>PyMem_RawMalloc(new_cap * sizeof(Packet))
        if ring == NULL:
            return SLOT_NOMEM
        for i in range(self._count):
            ring[i] = self._ring[(self._head + i) & self._mask]
        PyMem_RawFree(self._ring)
        self._ring = ring
        self._head = 0
        self._mask = new_cap - 1
        return SLOT_OK

    cdef Py_ssize_t _take(self, Packet *out, Py_ssize_t limit) noexcept nogil:
        cdef Py_ssize_t n = <Py_ssize_t>self._count if <size_t>limit > self._count else limit
        cdef Py_ssize_t i
        for i in range(n):
            out[i] = self._ring[self._head]
            self._head = (self._head + 1) & self._mask
        self._count -= n
        return n

    cdef int _deliver(self, Packet *packets, Py_ssize_t n) noexcept nogil:
        """Post `n` packets: hand them to parked getters first, queue the
        rest, then wake those getters.  0, SLOT_NOMEM or -1 when closed;
        nothing is posted unless everything can be."""
        cdef Waiter *woken = NULL
        cdef Waiter *w
        cdef Waiter *last = NULL
        cdef Py_ssize_t i = 0, parked = 0
        wsp_lock_acquire(&self._lock)
        if self._closed:
            wsp_lock_release(&self._lock)
            return -1
        w = self._waiters
        while w != NULL and parked < n:
            parked += 1
            w = w.next
        if self._reserve(self._count + <size_t>(n - parked)) != SLOT_OK:
            wsp_lock_release(&self._lock)
            return SLOT_NOMEM
        while i < parked:
            w = self._waiters
            self._waiters = w.next
            w.packet = packets[i]
            w.state = WAITER_DELIVERED
            w.next = NULL
            if last == NULL:
                woken = w
            else:
                last.next = w
            last = w
            i += 1
        while i < n:
            self._ring[(self._head + self._count) & self._mask] = packets[i]
            self._count += 1
            i += 1
        self._posted += <unsigned long long>n
        wsp_lock_release(&self._lock)
        wake_list(woken)
        return 0

    # -- posting -----------------------------------------------------------------

    def post(self, status, nbytes, key, overlapped_id):
        """Queue one packet (or hand it to a parked getter)."""
        cdef Packet p
        cdef int rc
        p.status = u64_arg(status)
        p.nbytes = u64_arg(nbytes)
        p.key = u64_arg(key)
        p.overlapped_id = u64_arg(overlapped_id)
        rc = self._deliver(&p, 1)
        if rc:
            self._raise_post_error(rc)

    def post_many(self, packets):
        """Queue a sequence of packets at once, all or none (one lock; long
        batches run without the GIL)."""
        cdef tuple seq
        cdef Py_ssize_t n
        cdef Py_ssize_t i
        cdef Packet stack_buf[STACK_PACKETS]
        cdef Packet *buf = stack_buf
        cdef int rc
        # Convert from an owned tuple snapshot, never from pointers into the
        # caller's list: a field's __index__ or a packet's __iter__ runs
        # Python code, which may change (or free the storage of) that list.
        try:
            seq = PySequence_Tuple(packets)
        except TypeError:
            if hasattr(type(packets), "__iter__") or hasattr(type(packets), "__getitem__"):
                raise                    # raised while iterating: not ours to rename
            raise TypeError("post_many() needs an iterable of packets") from None
        n = len(seq)
        if n > STACK_PACKETS:
            buf = <Packet *>PyMem_RawMalloc(<size_t>n * sizeof(Packet))
            if buf == NULL:
                raise MemoryError()
        try:
            for i in range(n):
                _packet_from(seq[i], &buf[i])
            if n >= NOGIL_BATCH:
                with nogil:
                    rc = self._deliver(buf, n)
            else:
                rc = self._deliver(buf, n)
        finally:
            if buf != stack_buf:
                PyMem_RawFree(buf)
        if rc:
            self._raise_post_error(rc)

    cdef int _raise_post_error(self, int rc) except -1:
        if rc == SLOT_NOMEM:
            raise MemoryError()
        raise _error(WSA_INVALID_HANDLE)

    # -- getting -----------------------------------------------------------------

    def get(self, timeout=None, since=None):
        """The oldest packet as a tuple, or None after `timeout` seconds
        (None: wait forever) or when the queue is closed.  Blocks without the
        GIL.  `since`: a value of :attr:`wakes` read earlier -- if
        wake_waiters() has been called since, return None instead of
        waiting (a wake meant for a getter that had not parked yet)."""
        cdef double seconds = timeout_seconds(timeout)   # checked before any work
        cdef long long since_ = _since_arg(since)
        cdef Packet p
        cdef Py_ssize_t n
        cdef bint closed
        wsp_lock_acquire(&self._lock)
        n = self._take(&p, 1)
        closed = self._closed
        wsp_lock_release(&self._lock)
        if n:
            return _packet_tuple(&p)
        if closed or seconds == 0.0:
            return None
        if self._wait_first(deadline_after(seconds), &p, since_):
            return _packet_tuple(&p)
        return None

    def get_many(self, max_entries, timeout=None, since=None):
        """Up to `max_entries` packets, oldest first, in one call; waits (as
        `get` does, `since` too) only for the first.  [] on timeout or when
        closed."""
        cdef Py_ssize_t want = count_arg(max_entries)
        cdef long long since_ = _since_arg(since)
        cdef double seconds
        cdef Py_ssize_t n, size, i
        cdef bint closed
        cdef Packet stack_buf[STACK_PACKETS]
        cdef Packet *buf = stack_buf
        cdef list result
        if want == 0:
            raise _error(WSAEINVAL)
        seconds = timeout_seconds(timeout)   # checked before any work
        size = want
        if want > STACK_PACKETS:
            wsp_lock_acquire(&self._lock)
            size = <Py_ssize_t>self._count
            wsp_lock_release(&self._lock)
            size = STACK_PACKETS if size < STACK_PACKETS else (want if size > want else size)
            if size > STACK_PACKETS:
                buf = <Packet *>PyMem_RawMalloc(size * sizeof(Packet))
                if buf == NULL:
                    raise MemoryError()
        try:
            wsp_lock_acquire(&self._lock)
            n = self._take(buf, size)
            closed = self._closed
            wsp_lock_release(&self._lock)
            if n == 0 and not closed and seconds != 0.0:
                if self._wait_first(deadline_after(seconds), buf, since_):
                    n = 1
                    if size > 1:
                        wsp_lock_acquire(&self._lock)
                        n += self._take(buf + 1, size - 1)
                        wsp_lock_release(&self._lock)
            result = PyList_New(n)
            for i in range(n):
                item = _packet_tuple(&buf[i])
                Py_INCREF(item)
                PyList_SET_ITEM(result, i, item)
            return result
        finally:
            if buf != stack_buf:
                PyMem_RawFree(buf)

    cdef bint _wait_first(self, int64_t deadline, Packet *out, long long since) except -1:
        """Park until a packet is handed over; False on timeout or close."""
        cdef Waiter w
        cdef int outcome
        w.sem = NULL
        try:
            while True:
                with nogil:
                    outcome = self._wait_once(deadline, &w, out, since)
                if outcome == GOT_PACKET:
                    return True
                if outcome == GET_TIMEOUT or outcome == GET_CLOSED:
                    return False
                if outcome == GET_NOMEM:
                    raise MemoryError()
                # Interrupted while still parked (nothing was handed to us):
                # run signal handlers, then wait again.
                PyErr_CheckSignals()
        finally:
            if w.sem != NULL:
                parking_give(w.sem)

    cdef int _wait_once(self, int64_t deadline, Waiter *w, Packet *out,
                        long long since) noexcept nogil:
        cdef int result
        while True:
            wsp_lock_acquire(&self._lock)
            if self._take(out, 1):
                wsp_lock_release(&self._lock)
                return GOT_PACKET
            if self._closed:
                wsp_lock_release(&self._lock)
                return GET_CLOSED
            if deadline >= 0 and wsp_monotonic_us() >= deadline:
                wsp_lock_release(&self._lock)
                return GET_TIMEOUT
            if since >= 0 and self._wakes != since:
                wsp_lock_release(&self._lock)   # woken before it parked: as a wake
                return GET_TIMEOUT
            if w.sem == NULL:
                wsp_lock_release(&self._lock)   # never allocate an OS lock under ours
                w.sem = parking_take()
                if w.sem == NULL:
                    return GET_NOMEM
                continue
            w.state = WAITER_WAITING
            waiters_push(&self._waiters, w)
            _count(&_parked, 1)              # registered: a post will find it
            wsp_lock_release(&self._lock)
            result = park(w, &self._lock, &self._waiters, deadline)
            _count(&_parked, -1)
            if result == PARK_WOKEN:
                if w.state == WAITER_DELIVERED:
                    out[0] = w.packet
                    return GOT_PACKET
                if w.state == WAITER_CLOSED:
                    return GET_CLOSED
                return GET_TIMEOUT       # wake_waiters(): return as on a timeout
            if result == PARK_INTERRUPTED:
                return GET_INTERRUPTED
            # PARK_TIMEOUT: loop once more for a last look before giving up.

    # -- buffer forms: no Python object per packet --------------------------------

    def post_from(self, buf):
        """Post one packet per four items of `buf` -- ``(status, nbytes, key,
        overlapped_id)``, in order -- all or none, as ``post_many`` does.

        `buf`: a one-dimensional C-contiguous buffer of unsigned 64-bit items
        (read-only is fine), else TypeError; a length that is not a multiple
        of 4 is WSAEINVAL; a closed queue WSA_INVALID_HANDLE.  One lock for
        the batch; long batches run without the GIL."""
        cdef Py_buffer view
        cdef Py_ssize_t items, n
        cdef Packet stack_buf[STACK_PACKETS]
        cdef Packet *packets
        cdef Packet *tmp = NULL
        cdef int rc
        u64_buffer(buf, &view, False, "post_from() argument 'buf'")
        try:
            items = view.shape[0]
            if items % 4:
                raise _error(WSAEINVAL)
            n = items // 4
            packets = <Packet *>view.buf
            if not aligned8(packets):
                if n > STACK_PACKETS:
                    tmp = <Packet *>PyMem_RawMalloc(<size_t>n * sizeof(Packet))
                    if tmp == NULL:
                        raise MemoryError()
                    packets = tmp
                else:
                    packets = stack_buf
                memcpy(packets, view.buf, <size_t>n * sizeof(Packet))
            if n >= NOGIL_BATCH:
                with nogil:
                    rc = self._deliver(packets, n)
            else:
                rc = self._deliver(packets, n)
        finally:
            PyMem_RawFree(tmp)
            PyBuffer_Release(&view)
        if rc:
            self._raise_post_error(rc)

    def get_into(self, buf, timeout=None):
        """Fill `buf` with up to ``len(buf) // 4`` packets, oldest first,
        four items each, and return how many packets it wrote; waits (as
        `get` does, same timeouts) only for the first.  0 on timeout or when
        the queue is closed.  Items past the packets written are untouched.

        `buf`: a writable, one-dimensional, C-contiguous buffer of unsigned
        64-bit items, else TypeError; a length of 0 or one that is not a
        multiple of 4 is WSAEINVAL.  Long batches are taken without the GIL,
        straight into the buffer."""
        cdef Py_buffer view
        cdef Py_ssize_t items, limit, n
        cdef double seconds
        cdef bint closed = False
        cdef Packet *out
        cdef Packet *tmp = NULL
        u64_buffer(buf, &view, True, "get_into() argument 'buf'")
        try:
            items = view.shape[0]
            if items == 0 or items % 4:
                raise _error(WSAEINVAL)
            limit = items // 4
            seconds = timeout_seconds(timeout)   # checked before any work
            out = <Packet *>view.buf
            if not aligned8(out):
                # Packets go through an aligned block as large as the buffer
                # (no larger than what the caller already allocated).
                tmp = <Packet *>PyMem_RawMalloc(<size_t>limit * sizeof(Packet))
                if tmp == NULL:
                    raise MemoryError()
                out = tmp
            n = self._take_into(out, limit, &closed)
            if n == 0 and not closed and seconds != 0.0:
                if self._wait_first(deadline_after(seconds), out, -1):
                    n = 1
                    if limit > 1:
                        n += self._take_into(out + 1, limit - 1, &closed)
            if tmp != NULL and n:
                memcpy(view.buf, tmp, <size_t>n * sizeof(Packet))
            return n
        finally:
            PyMem_RawFree(tmp)
            PyBuffer_Release(&view)

    cdef Py_ssize_t _take_into(self, Packet *out, Py_ssize_t limit, bint *closed) noexcept:
        """Take up to `limit` queued packets into `out` (called with the GIL;
        releases it while copying when both the request and the queue hold
        NOGIL_BATCH packets or more); *closed says whether the queue is."""
        cdef Py_ssize_t n
        wsp_lock_acquire(&self._lock)
        if limit >= NOGIL_BATCH and self._count >= NOGIL_BATCH:
            wsp_lock_release(&self._lock)
            with nogil:
                wsp_lock_acquire(&self._lock)
                n = self._take(out, limit)
                closed[0] = self._closed
                wsp_lock_release(&self._lock)
            return n
        n = self._take(out, limit)
        closed[0] = self._closed
        wsp_lock_release(&self._lock)
        return n

    # -- closing -----------------------------------------------------------------

    def close(self):
        """Close the port: parked getters return None at once, later posts
        raise WSA_INVALID_HANDLE, later gets return None / [] at once.
        Returns the packets that were still queued (they are discarded, as
        Windows discards them), so the caller can release what they name.
        Closing again returns []."""
        cdef Waiter *woken
        cdef Waiter *w
        cdef Packet *buf = NULL
        cdef Py_ssize_t n = 0, cap, i
        cdef list result
        cdef object item
        while True:
            wsp_lock_acquire(&self._lock)
            cap = <Py_ssize_t>self._count
            wsp_lock_release(&self._lock)
            PyMem_RawFree(buf)
            buf = <Packet *>PyMem_RawMalloc((cap + 1) * sizeof(Packet))
            if buf == NULL:
                raise MemoryError()
            wsp_lock_acquire(&self._lock)
            if <Py_ssize_t>self._count <= cap:
                break
            wsp_lock_release(&self._lock)    # more were posted meanwhile
        if not self._closed:
            self._closed = True
            n = self._take(buf, cap)
        woken = self._waiters
        self._waiters = NULL
        w = woken
        while w != NULL:
            w.state = WAITER_CLOSED
            w = w.next
        wsp_lock_release(&self._lock)
        wake_list(woken)
        try:
            result = PyList_New(n)
            for i in range(n):
                item = _packet_tuple(&buf[i])
                Py_INCREF(item)
                PyList_SET_ITEM(result, i, item)
            return result
        finally:
            PyMem_RawFree(buf)

    def wake_waiters(self):
        """Wake every thread parked in get()/get_many() on this queue; each
        returns as if its timeout had passed (None / []).  Return how many
        were woken.  The SPI engine uses it to make a completion-port wait
        alertable: an APC queued to a thread parked here must wake it."""
        cdef Waiter *woken
        cdef Waiter *w
        cdef Py_ssize_t n = 0
        wsp_lock_acquire(&self._lock)
        self._wakes += 1
        woken = self._waiters
        self._waiters = NULL
        w = woken
        while w != NULL:
            w.state = WAITER_WOKEN
            n += 1
            w = w.next
        wsp_lock_release(&self._lock)
        wake_list(woken)
        return n

    @property
    def closed(self):
        """True once close() has been called."""
        return self._closed

    @property
    def wakes(self):
        """How many times wake_waiters() has been called: pass the value to
        get()/get_many() as `since` so a wake that comes before the getter
        parks is not lost."""
        return self._wakes

    @property
    def posted(self):
        """How many packets were ever posted (queued or handed to a getter):
        a waiter that saw this number change has had something delivered
        since, even if the packet is no longer in the queue."""
        cdef unsigned long long n
        wsp_lock_acquire(&self._lock)
        n = self._posted
        wsp_lock_release(&self._lock)
        return n

    def __len__(self):
        """How many packets are queued."""
        cdef size_t n
        wsp_lock_acquire(&self._lock)
        n = self._count
        wsp_lock_release(&self._lock)
        return n

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return f"<wsp._core.CompletionQueue {state} queued={len(self)}>"
