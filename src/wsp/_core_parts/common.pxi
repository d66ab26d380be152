# Shared helpers of wsp._core: the generation-tagged slot table, argument conversion with the
# errors of ``docs/guide/spi-model.rst, "Errors"``, timeouts and thread parking.
#
# Everything named slots_* runs with the owning structure's spinlock held and
# without the GIL: it touches only integers.

# ------------------------------------------------------------ debug counters
# Lifetime counters of the native resources the core allocates.  They are
# bumped only on slow paths (allocation, growth, teardown), never per
# operation, so they cost nothing on the hot path; tests read them through
# debug_counters() to prove that teardown frees what was allocated.
cdef wsp_lock_t _counters_lock = 0
cdef Py_ssize_t _live_tables = 0
cdef Py_ssize_t _live_registries = 0
cdef Py_ssize_t _live_queues = 0
cdef Py_ssize_t _parking_locks = 0      # allocated and not yet freed
cdef Py_ssize_t _apc_nodes = 0          # allocated and not yet freed
cdef Py_ssize_t _thread_records = 0     # allocated and not yet freed
cdef Py_ssize_t _parked = 0             # threads parked in a core wait right now

cdef inline void _count(Py_ssize_t *counter, Py_ssize_t delta) noexcept nogil:
    wsp_lock_acquire(&_counters_lock)
    counter[0] += delta
    wsp_lock_release(&_counters_lock)


def debug_counters():
    """Native resources alive right now, by kind (for leak tests).

    ``tables``, ``registries`` and ``queues`` count live core objects;
    ``parking_locks`` counts the OS locks kept for parked threads (a small
    pool survives on purpose); ``apc_nodes`` counts the APC records of the
    thread registries, including their free pools; ``thread_records`` counts
    the per-thread-lifetime records of every registry: one per ident in use
    plus each ended lifetime (``ThreadRegistry.end_thread``) that still has
    an open handle.

    ``parked`` counts the threads parked in a core wait at this moment
    (``CompletionQueue.get``/``get_many``, ``ThreadRegistry.wait``, all
    instances together): a thread is counted from the moment its wait is
    registered where a ``post``/``close``/``wake_waiters``/``queue_apc``/
    ``end_thread`` will find it, until it comes back from parking (woken,
    timed out or interrupted by a signal).  Waits that return without
    parking are never counted.
    """
    wsp_lock_acquire(&_counters_lock)
    result = (_live_tables, _live_registries, _live_queues, _parking_locks,
              _apc_nodes, _thread_records, _parked)
    wsp_lock_release(&_counters_lock)
    return dict(zip(("tables", "registries", "queues", "parking_locks",
                     "apc_nodes", "thread_records", "parked"), result))


# ---------------------------------------------------------------- slot table
cdef enum:
    SLOT_GEN_MAX = (1 << SLOT_GEN_BITS) - 1
    SLOT_INITIAL_CAPACITY = 64

# The largest number of slots a table can address.
cdef size_t SLOT_INDEX_LIMIT = (<size_t>1) << SLOT_INDEX_BITS


cdef int slots_init(SlotTable *t, size_t max_live) noexcept nogil:
    t.state = NULL
    t.payload = NULL
    t.free_stack = NULL
    t.nfree = 0
    t.used = 0
    t.capacity = 0
    t.live = 0
    t.max_live = max_live if max_live < SLOT_INDEX_LIMIT else SLOT_INDEX_LIMIT
    return 0


cdef void slots_free(SlotTable *t) noexcept nogil:
    PyMem_RawFree(t.state)
    PyMem_RawFree(t.payload)
    PyMem_RawFree(t.free_stack)
    t.state = NULL
    t.payload = NULL
    t.free_stack = NULL
    t.capacity = 0


cdef int slots_reserve(SlotTable *t, size_t needed) noexcept nogil:
    """Make room for `needed` slots in total; SLOT_OK, SLOT_FULL or SLOT_NOMEM.

    The three arrays are grown together and, if one allocation fails, the ones
    that succeeded are kept (they are only larger) so the table stays valid.
    """
    cdef size_t cap = t.capacity
    cdef void *p
    if needed <= cap:
        return SLOT_OK
    if needed > SLOT_INDEX_LIMIT:
        return SLOT_FULL
    if cap == 0:
        cap = SLOT_INITIAL_CAPACITY
    while cap < needed:
        cap *= 2
    if cap > SLOT_INDEX_LIMIT:
        cap = SLOT_INDEX_LIMIT
    if cap > (<size_t>-1) // sizeof(uint64_t):
        return SLOT_NOMEM                  # 32-bit size_t: the product would wrap
    p = PyMem_RawRealloc(t.state, cap * sizeof(uint64_t))
    if p == NULL:
        return SLOT_NOMEM
    t.state = <uint64_t *>p
    p = PyMem_RawRealloc(t.payload, cap * sizeof(uint64_t))
    if p == NULL:
        return SLOT_NOMEM
    t.payload = <uint64_t *>p
    p = PyMem_RawRealloc(t.free_stack, cap * sizeof(uint32_t))
    if p == NULL:
        return SLOT_NOMEM
    t.free_stack = <uint32_t *>p
    t.capacity = cap
    return SLOT_OK


cdef inline int slots_acquire(SlotTable *t, uint64_t payload, uint64_t *handle) noexcept nogil:
    """Take a free slot for `payload`; store the new handle value in *handle."""
    cdef size_t i
    cdef uint64_t gen
    cdef int rc
    if t.live >= t.max_live:
        return SLOT_FULL
    if t.nfree:
        t.nfree -= 1
        i = t.free_stack[t.nfree]
    else:
        if t.used == t.capacity:
            rc = slots_reserve(t, t.used + 1)
            if rc != SLOT_OK:
                return rc
        i = t.used
        t.used += 1
        t.state[i] = 0
    gen = (t.state[i] >> 1) + 1
    if gen > SLOT_GEN_MAX:
        gen = 1
    t.state[i] = (gen << 1) | 1
    t.payload[i] = payload
    t.live += 1
    handle[0] = ((<uint64_t>i << SLOT_GEN_BITS) | gen) << 2
    return SLOT_OK


cdef inline Py_ssize_t slots_find(SlotTable *t, uint64_t handle) noexcept nogil:
    """Index of the live slot that `handle` names, or -1 (unknown/stale/closed)."""
    cdef uint64_t i, gen
    if handle & 3:
        return -1
    gen = (handle >> 2) & SLOT_GEN_MAX
    i = handle >> (SLOT_GEN_BITS + 2)
    if gen == 0 or i >= t.used:
        return -1
    if t.state[i] != ((gen << 1) | 1):
        return -1
    return <Py_ssize_t>i


cdef inline void slots_release(SlotTable *t, Py_ssize_t i) noexcept nogil:
    t.state[i] &= ~(<uint64_t>1)
    t.free_stack[t.nfree] = <uint32_t>i
    t.nfree += 1
    t.live -= 1


cdef inline uint64_t slots_handle_of(SlotTable *t, size_t i) noexcept nogil:
    return ((<uint64_t>i << SLOT_GEN_BITS) | (t.state[i] >> 1)) << 2


# --------------------------------------------------------- argument parsing
# No try/except on these paths: a Cython ``try`` saves and restores the
# thread's exception state on entry (~10 ns), more than the whole
# conversion.  PyLong_AsLongLongAndOverflow never raises for an int; it
# flags values outside the signed 64-bit range instead.
cdef extern from "Python.h":
    long long _as_long_long "PyLong_AsLongLongAndOverflow" (object obj, int *overflow) noexcept

cdef extern from "includes/wsp_pylong.h":
    bint wsp_small_nonneg_long(object obj, uint64_t *out) noexcept


cdef inline bint handle_value(object obj, uint64_t *out) noexcept:
    """Convert a handle argument; False for anything that is not an int
    naming a possible handle (so that callers raise their 'unknown handle'
    error -- WSAENOTSOCK or WSAEINVAL -- rather than TypeError).  Handle
    values are below 2**63, so the signed conversion covers them all."""
    cdef int overflow
    cdef long long value
    if not isinstance(obj, int):
        return False
    if wsp_small_nonneg_long(obj, out):
        return True
    value = _as_long_long(obj, &overflow)
    if overflow or value < 0:
        return False
    out[0] = <uint64_t>value
    return True


cdef uint64_t _u64_arg_slow(object obj) except? 0xFFFFFFFFFFFFFFFF:
    if not isinstance(obj, int):
        obj = PyNumber_Index(obj)      # TypeError for floats, str, None
    try:
        return <uint64_t>obj
    except OverflowError:
        raise _error(WSAEINVAL) from None


cdef inline uint64_t u64_arg(object obj) except? 0xFFFFFFFFFFFFFFFF:
    """An unsigned 64-bit integer argument: TypeError if it is not an
    integer (floats included: no silent truncation), WinsockError(WSAEINVAL)
    if it is out of range.  Integer-like objects (``__index__``) are accepted."""
    cdef int overflow
    cdef long long value
    cdef uint64_t small
    if isinstance(obj, int):
        if wsp_small_nonneg_long(obj, &small):
            return small
        value = _as_long_long(obj, &overflow)
        if not overflow and value >= 0:
            return <uint64_t>value
    return _u64_arg_slow(obj)


cdef inline Py_ssize_t count_arg(object obj) except -1:
    """A non-negative count argument below 2**63 (TypeError / WSAEINVAL).

    The conversion reads the int's digits (no user code runs for an int
    subclass); only a non-int runs its ``__index__``."""
    cdef Py_ssize_t n
    if not isinstance(obj, int):
        obj = PyNumber_Index(obj)
    try:
        n = obj
    except OverflowError:
        raise _error(WSAEINVAL) from None
    if n < 0:
        raise _error(WSAEINVAL)
    return n


cdef size_t batch_count_arg(object obj) except? <size_t>-1:
    """How many things a batch call should create: TypeError if `obj` is not
    an integer, WSAEINVAL if it is negative.  A count beyond the signed 64-bit
    range saturates to SIZE_MAX instead of failing, so that the caller's
    capacity check refuses it with WSAENOBUFS like any other count that does
    not fit.  Callers compare the result with their free room *before* they
    allocate or loop: nothing may be sized from an unchecked count."""
    cdef int overflow = 0
    cdef long long value
    if not isinstance(obj, int):
        obj = PyNumber_Index(obj)
    value = _as_long_long(obj, &overflow)
    if overflow < 0 or (overflow == 0 and value < 0):
        raise _error(WSAEINVAL)
    if overflow > 0 or <unsigned long long>value > <unsigned long long>(<size_t>-1):
        return <size_t>-1
    return <size_t>value


# Buffer arguments (``docs/guide/spi-model.rst, "The core"``: buffer forms).  The batch calls that
# take a buffer accept exactly the one-dimensional, C-contiguous buffers whose items are unsigned
# 64-bit integers in native byte order: struct format 'Q', or 'L' where that is 8 bytes (numpy's
# uint64 on LP64 platforms), optionally with a native-order prefix ('@', '=', or the '<'/'>' ctypes
# uses for this host). Everything else is a TypeError that names the argument.  The pure twin's
# _u64_view applies the same rules in the same order (item type, shape, writability) with the same
# messages.
#
# The export is taken with PyObject_GetBuffer and held until the call ends
# (PyBuffer_Release in a finally): the Py_buffer owns a reference to the
# exporter, and exporters refuse to resize or free their memory while an
# export is out (array.append and bytearray resizing raise BufferError), so
# `view.buf` stays valid across nogil loops, waits and any Python code that
# runs meanwhile.  The fast path calls it without a Cython ``try``; only a
# refusal takes the slow path that works out which rule was broken.
cdef extern from "Python.h":
    int _get_buffer "PyObject_GetBuffer" (object obj, Py_buffer *view, int flags) noexcept
    int PY_LITTLE_ENDIAN


cdef inline bint u64_format(const char *fmt, Py_ssize_t itemsize) noexcept nogil:
    """True if `fmt` with items of `itemsize` bytes names native unsigned
    64-bit integers (see above)."""
    if itemsize != 8 or fmt == NULL:   # NULL means 'B' (unsigned bytes)
        return False
    if fmt[0] == b'@' or fmt[0] == b'=':
        fmt += 1
    elif fmt[0] == b'<':
        if not PY_LITTLE_ENDIAN:
            return False
        fmt += 1
    elif fmt[0] == b'>' or fmt[0] == b'!':
        if PY_LITTLE_ENDIAN:
            return False
        fmt += 1
    return (fmt[0] == b'Q' or fmt[0] == b'L') and fmt[1] == 0


cdef str _buffer_problem(object view, bint writable, str name):
    """What is wrong with memoryview `view` as a buffer argument, or None."""
    fmt = view.format
    cdef bytes raw = fmt.encode("ascii", "replace")
    if not u64_format(raw, view.itemsize):
        return (f"{name} must hold unsigned 64-bit integers (format 'Q'), "
                f"not items of format {fmt!r} and {view.itemsize} bytes")
    if view.ndim != 1 or not view.c_contiguous:
        return f"{name} must be a one-dimensional C-contiguous buffer"
    if writable and view.readonly:
        return f"{name} must be a writable buffer"
    return None


cdef int _buffer_type_error(object obj, bint writable, str name) except -1:
    """Raise the TypeError that says why `obj` was refused."""
    try:
        view = memoryview(obj)
    except (TypeError, BufferError, ValueError):
        raise TypeError(f"{name} must be a buffer of unsigned 64-bit integers, "
                        f"not {type(obj).__name__}") from None
    with view:
        problem = _buffer_problem(view, writable, name)
    raise TypeError(problem or f"{name} must be a one-dimensional C-contiguous buffer")


cdef inline int u64_buffer(object obj, Py_buffer *view, bint writable, str name) except -1:
    """Export `obj` into `view` as a buffer argument (see above); writable
    if asked.  TypeError naming `name` otherwise.  On success the caller
    owns the export and must PyBuffer_Release(view) in a finally."""
    if _get_buffer(obj, view, PyBUF_RECORDS if writable else PyBUF_RECORDS_RO) < 0:
        # A refusal (TypeError: no buffer; BufferError or, from numpy,
        # ValueError: not writable, not strided...) is explained; anything
        # else (MemoryError) propagates.
        if not (PyErr_ExceptionMatches(TypeError) or PyErr_ExceptionMatches(BufferError)
                or PyErr_ExceptionMatches(ValueError)):
            return -1
        PyErr_Clear()
        return _buffer_type_error(obj, writable, name)
    if (view.ndim == 1 and u64_format(view.format, view.itemsize)
            and PyBuffer_IsContiguous(view, b'C') and not (writable and view.readonly)):
        return 0
    PyBuffer_Release(view)
    return _buffer_type_error(obj, writable, name)


cdef inline bint aligned8(const void *p) noexcept nogil:
    """Whether `p` may be read as uint64_t (a memoryview cast of a sliced
    bytearray need not be)."""
    return (<uintptr_t>p & 7) == 0


# Timeouts (``docs/guide/spi-model.rst, "The core"``).  None waits forever.  A non-number (str,
# bytes, an object without __float__) is a TypeError.  A timeout that is not a finite number >= 0
# (negative, NaN, +inf, -inf) is WSAEINVAL.  A finite timeout beyond TIMEOUT_FOREVER seconds --
# even one too large for a double, like 10**400 -- waits forever: no process lives that long.  The
# pure twin's _timeout_arg follows the same steps.
cdef double TIMEOUT_FOREVER = 1e12


cdef bint _timeout_is_negative(object timeout) except -1:
    try:
        return bool(timeout < 0)
    except Exception:
        raise _error(WSAEINVAL) from None


cdef bint _timeout_is_infinite(object timeout, double seconds) except -1:
    try:
        return bool(timeout == seconds)
    except Exception:
        return True


cdef double _timeout_seconds_slow(object timeout) except? -2.0:
    cdef double seconds
    if isinstance(timeout, (str, bytes, bytearray)) or not (
            isinstance(timeout, (int, float)) or hasattr(type(timeout), "__float__")):
        raise TypeError(f"timeout must be a number of seconds or None, "
                        f"not {type(timeout).__name__}")
    try:
        seconds = float(timeout)
    except OverflowError:
        # Finite but beyond any double (a huge int or Fraction): its sign
        # decides between WSAEINVAL and forever.
        if _timeout_is_negative(timeout):
            raise _error(WSAEINVAL) from None
        return -1.0
    except ValueError:                 # e.g. Decimal("sNaN")
        raise _error(WSAEINVAL) from None
    if (seconds == INFINITY and not isinstance(timeout, float)
            and not _timeout_is_infinite(timeout, seconds)):
        return -1.0                    # finite, only its double is inf (Decimal("1e400"))
    if not (seconds >= 0.0) or seconds == INFINITY:   # NaN, negative, infinite
        raise _error(WSAEINVAL)
    return -1.0 if seconds > TIMEOUT_FOREVER else seconds


cdef inline double timeout_seconds(object timeout) except? -2.0:
    """Validate a timeout argument: the seconds to wait, or -1.0 for
    'forever' (see above).  Runs before the call does any work."""
    cdef double seconds
    if timeout is None:
        return -1.0
    cdef uint64_t small
    if type(timeout) is float:
        seconds = <double>timeout
        if seconds >= 0.0 and seconds <= TIMEOUT_FOREVER:
            return seconds
    elif type(timeout) is int and wsp_small_nonneg_long(timeout, &small):
        if small <= <uint64_t>TIMEOUT_FOREVER:
            return <double>small
    return _timeout_seconds_slow(timeout)


cdef inline int64_t deadline_after(double seconds) noexcept nogil:
    """Absolute monotonic deadline in microseconds for a validated timeout;
    -1 means wait forever.  seconds <= 1e12, so this stays below 2**63."""
    if seconds < 0.0:
        return -1
    return wsp_monotonic_us() + <int64_t>(seconds * 1e6)


cdef int64_t deadline_from_timeout(object timeout) except? -2:
    """Validate `timeout` and turn it into a deadline (deadline_after)."""
    return deadline_after(timeout_seconds(timeout))


# ------------------------------------------------------------------ parking
# A small pool of OS locks used to park threads.  A pooled lock is always in
# the *held* state, so that acquiring it blocks until a waker releases it.
cdef enum:
    PARKING_POOL_MAX = 64

cdef wsp_lock_t _parking_pool_lock = 0
cdef PyThread_type_lock _parking_pool[PARKING_POOL_MAX]
cdef size_t _parking_pool_len = 0


cdef PyThread_type_lock parking_take() noexcept nogil:
    """A held parking lock, or NULL when the OS refuses one."""
    cdef PyThread_type_lock sem = NULL
    global _parking_pool_len
    wsp_lock_acquire(&_parking_pool_lock)
    if _parking_pool_len:
        _parking_pool_len -= 1
        sem = _parking_pool[_parking_pool_len]
    wsp_lock_release(&_parking_pool_lock)
    if sem != NULL:
        return sem
    sem = PyThread_allocate_lock()
    if sem == NULL:
        return NULL
    PyThread_acquire_lock(sem, 1)
    _count(&_parking_locks, 1)
    return sem


cdef void parking_give(PyThread_type_lock sem) noexcept nogil:
    """Return a held parking lock to the pool (or free it when the pool is full)."""
    global _parking_pool_len
    wsp_lock_acquire(&_parking_pool_lock)
    if _parking_pool_len < PARKING_POOL_MAX:
        _parking_pool[_parking_pool_len] = sem
        _parking_pool_len += 1
        sem = NULL
    wsp_lock_release(&_parking_pool_lock)
    if sem != NULL:
        PyThread_release_lock(sem)
        PyThread_free_lock(sem)
        _count(&_parking_locks, -1)


cdef inline void waiters_push(Waiter **head, Waiter *w) noexcept nogil:
    w.next = head[0]
    head[0] = w


cdef inline bint waiters_remove(Waiter **head, Waiter *w) noexcept nogil:
    cdef Waiter **link = head
    while link[0] != NULL:
        if link[0] == w:
            link[0] = w.next
            w.next = NULL
            return True
        link = &link[0].next
    return False


cdef int park(Waiter *w, wsp_lock_t *lock, Waiter **head, int64_t deadline) noexcept nogil:
    """Sleep until `w` is woken, the deadline passes, or a signal arrives.

    Called without the GIL and without `lock`, after `w` was pushed on
    `*head` under `lock`.  On PARK_TIMEOUT and PARK_INTERRUPTED `w` has been
    taken off the list again; on PARK_WOKEN the waker did that and `w.state`
    says why.  Either way `w.sem` is held again when this returns, ready for
    the next wait.
    """
    cdef PyLockStatus r
    cdef int64_t remaining
    while True:
        if deadline < 0:
            r = PyThread_acquire_lock_timed(w.sem, -1, 1)
        else:
            remaining = deadline - wsp_monotonic_us()
            if remaining <= 0:
                r = PY_LOCK_FAILURE
            else:
                if remaining > PY_TIMEOUT_MAX:
                    remaining = PY_TIMEOUT_MAX
                r = PyThread_acquire_lock_timed(w.sem, remaining, 1)
                if r == PY_LOCK_FAILURE and wsp_monotonic_us() < deadline:
                    continue          # a capped slice of a longer wait ended
        if r == PY_LOCK_ACQUIRED:
            return PARK_WOKEN
        wsp_lock_acquire(lock)
        if w.state == WAITER_WAITING:
            waiters_remove(head, w)
            wsp_lock_release(lock)
            return PARK_TIMEOUT if r == PY_LOCK_FAILURE else PARK_INTERRUPTED
        wsp_lock_release(lock)
        # A waker claimed us just as we gave up: it releases `sem` right
        # after dropping the spinlock, so this acquire is short.  Taking it
        # keeps the lock in the held state for the pool.
        PyThread_acquire_lock(w.sem, 1)
        return PARK_WOKEN


cdef inline void wake_list(Waiter *w) noexcept nogil:
    """Release the parking locks of an unlinked list of claimed waiters.

    Read `next` and `sem` before releasing: the woken thread returns (and
    its Waiter, on its stack, disappears) as soon as its lock is released.
    """
    cdef Waiter *nxt
    cdef PyThread_type_lock sem
    while w != NULL:
        nxt = w.next
        sem = w.sem
        PyThread_release_lock(sem)
        w = nxt
