# HandleTable: the process's socket handle table (``docs/guide/spi-model.rst, "The core"``).
#
# Handles are generation-tagged slot indices (see _core.pxd); the context of
# each live handle is an owned PyObject* kept in the slot's payload word.

# Batches at least this long run their loop without the GIL; shorter ones
# are cheaper done while holding it (releasing and re-taking the GIL costs
# ~46 ns, and re-taking it can stall behind another thread).
cdef enum:
    NOGIL_BATCH = 256
    STACK_HANDLES = 64           # close_from batches up to this size need no allocation


cdef inline object _steal(PyObject *p):
    """Turn an owned reference into a Python object without an extra INCREF."""
    cdef object obj = <object>p
    Py_DECREF(obj)
    return obj


@cython.final
cdef class HandleTable:
    """Thread-safe table of socket handles, each carrying a Python context.

    ``HandleTable(max_handles=None)``: ``create`` raises
    ``WinsockError(WSAENOBUFS)`` once ``max_handles`` handles are live.
    Handles are non-zero multiples of 4 below ``2**63``; a closed handle's
    value is not issued again for at least 2**20 later creations.
    """

    def __cinit__(self, max_handles=None):
        cdef size_t limit
        if max_handles is None:
            limit = SLOT_INDEX_LIMIT
        else:
            limit = <size_t>count_arg(max_handles)
            if limit == 0:
                raise _error(WSAEINVAL)
        self._lock = 0
        slots_init(&self._slots, limit)
        _count(&_live_tables, 1)

    def __dealloc__(self):
        cdef size_t i
        if self._slots.max_live == 0:
            return                       # __cinit__ failed: nothing was counted
        for i in range(self._slots.used):
            if self._slots.state[i] & 1:
                Py_XDECREF(<PyObject *>self._slots.payload[i])
        slots_free(&self._slots)
        _count(&_live_tables, -1)

    @property
    def max_handles(self):
        """The limit on live handles."""
        return self._slots.max_live

    def create(self, context=None):
        """Store `context` under a new handle and return the handle.

        Raises WinsockError(WSAENOBUFS) when the table is full.
        """
        cdef uint64_t handle = 0
        cdef int rc
        Py_INCREF(context)
        wsp_lock_acquire(&self._lock)
        rc = slots_acquire(&self._slots, <uintptr_t><PyObject *>context, &handle)
        wsp_lock_release(&self._lock)
        if rc != SLOT_OK:
            Py_DECREF(context)
            if rc == SLOT_NOMEM:
                raise MemoryError()
            raise _error(WSAENOBUFS)
        return handle

    def query(self, handle):
        """The context stored under `handle`; WSAENOTSOCK if it is not live."""
        cdef uint64_t h
        cdef Py_ssize_t i = -1
        cdef PyObject *context = NULL
        if handle_value(handle, &h):
            wsp_lock_acquire(&self._lock)
            i = slots_find(&self._slots, h)
            if i >= 0:
                context = <PyObject *>self._slots.payload[i]
                Py_INCREF(<object>context)
            wsp_lock_release(&self._lock)
        if i < 0:
            raise _error(WSAENOTSOCK)
        return _steal(context)

    def close(self, handle):
        """Release `handle` and return its context; WSAENOTSOCK if not live."""
        cdef uint64_t h
        cdef Py_ssize_t i = -1
        cdef PyObject *context = NULL
        if handle_value(handle, &h):
            wsp_lock_acquire(&self._lock)
            i = slots_find(&self._slots, h)
            if i >= 0:
                context = <PyObject *>self._slots.payload[i]
                slots_release(&self._slots, i)
            wsp_lock_release(&self._lock)
        if i < 0:
            raise _error(WSAENOTSOCK)
        return _steal(context)

    def __contains__(self, handle):
        cdef uint64_t h
        cdef Py_ssize_t i = -1
        if handle_value(handle, &h):
            wsp_lock_acquire(&self._lock)
            i = slots_find(&self._slots, h)
            wsp_lock_release(&self._lock)
        return i >= 0

    def __len__(self):
        cdef size_t n
        wsp_lock_acquire(&self._lock)
        n = self._slots.live
        wsp_lock_release(&self._lock)
        return n

    def handles(self):
        """A snapshot list of the live handles, in slot order."""
        cdef uint64_t *buf = NULL
        cdef size_t i, n = 0, cap
        while True:
            wsp_lock_acquire(&self._lock)
            cap = self._slots.live
            wsp_lock_release(&self._lock)
            PyMem_RawFree(buf)
            buf = <uint64_t *>PyMem_RawMalloc((cap + 1) * sizeof(uint64_t))
            if buf == NULL:
                raise MemoryError()
            wsp_lock_acquire(&self._lock)
            if self._slots.live <= cap:
                for i in range(self._slots.used):
                    if self._slots.state[i] & 1:
                        buf[n] = slots_handle_of(&self._slots, i)
                        n += 1
                wsp_lock_release(&self._lock)
                break
            wsp_lock_release(&self._lock)   # grew meanwhile: size again
        try:
            return [buf[i] for i in range(n)]
        finally:
            PyMem_RawFree(buf)

    def create_many(self, n, context=None):
        """Create `n` handles sharing `context`, all or none; return them in
        creation order.  One lock for the whole batch; long batches run
        without the GIL.  WSAEINVAL for a negative `n`, WSAENOBUFS if they do
        not all fit (checked before anything is allocated), TypeError for a
        non-integer."""
        cdef size_t want = batch_count_arg(n)
        cdef Py_ssize_t count
        cdef Py_ssize_t i
        cdef size_t room
        cdef uint64_t *buf
        cdef int rc
        cdef list result
        cdef object value
        if want == 0:
            return []
        # The room check comes first: `want` may be any size up to SIZE_MAX,
        # and neither the buffer below nor the INCREF loop may be sized from
        # it until it is known to fit (room <= SLOT_INDEX_LIMIT = 2**32).
        # _create_batch checks again under the lock, as the room may shrink.
        wsp_lock_acquire(&self._lock)
        room = self._slots.max_live - self._slots.live
        wsp_lock_release(&self._lock)
        if want > room:
            raise _error(WSAENOBUFS)
        count = <Py_ssize_t>want
        result = PyList_New(count)       # MemoryError early, before any side effect
        buf = <uint64_t *>PyMem_RawMalloc(want * sizeof(uint64_t))
        if buf == NULL:
            raise MemoryError()
        for i in range(count):
            Py_INCREF(context)
        if count >= NOGIL_BATCH:
            with nogil:
                rc = self._create_batch(count, <uintptr_t><PyObject *>context, buf)
        else:
            rc = self._create_batch(count, <uintptr_t><PyObject *>context, buf)
        if rc != SLOT_OK:
            PyMem_RawFree(buf)
            for i in range(count):
                Py_DECREF(context)       # the caller still holds one: no code runs
            if rc == SLOT_NOMEM:
                raise MemoryError()
            raise _error(WSAENOBUFS)
        for i in range(count):
            value = buf[i]
            Py_INCREF(value)             # PyList_SET_ITEM steals one reference
            PyList_SET_ITEM(result, i, value)
        PyMem_RawFree(buf)
        return result

    cdef int _create_batch(self, Py_ssize_t count, uintptr_t payload,
                           uint64_t *out) noexcept nogil:
        cdef Py_ssize_t i
        cdef size_t fresh
        cdef int rc = SLOT_OK
        wsp_lock_acquire(&self._lock)
        if <size_t>count > self._slots.max_live - self._slots.live:
            rc = SLOT_FULL
        else:
            # Reserve once so the loop below cannot fail half-way.
            fresh = <size_t>count - self._slots.nfree if <size_t>count > self._slots.nfree else 0
            rc = slots_reserve(&self._slots, self._slots.used + fresh)
            if rc == SLOT_OK:
                for i in range(count):
                    slots_acquire(&self._slots, payload, &out[i])
        wsp_lock_release(&self._lock)
        return rc

    def close_many(self, handles):
        """Close every live handle in `handles` (an iterable); unknown,
        stale and duplicate ones are skipped.  Return how many were closed."""
        cdef tuple seq
        cdef Py_ssize_t n
        cdef Py_ssize_t i, closed = 0
        cdef uint64_t *values
        cdef PyObject **contexts
        # An owned tuple snapshot: iterating `handles` may run Python code,
        # and nothing may then change the items read below.
        try:
            seq = PySequence_Tuple(handles)
        except TypeError:
            if hasattr(type(handles), "__iter__") or hasattr(type(handles), "__getitem__"):
                raise                    # raised while iterating: not ours to rename
            raise TypeError("close_many() needs an iterable of handles") from None
        n = len(seq)
        if n == 0:
            return 0
        values = <uint64_t *>PyMem_RawMalloc(<size_t>n * (sizeof(uint64_t) + sizeof(PyObject *)))
        if values == NULL:
            raise MemoryError()
        contexts = <PyObject **>(values + n)
        for i in range(n):
            # handle_value runs no Python code (an int subclass's digits are
            # read directly), and `seq` cannot change anyway.
            if not handle_value(seq[i], &values[i]):
                values[i] = 0            # never a valid handle: skipped
        if n >= NOGIL_BATCH:
            with nogil:
                closed = self._close_batch(n, values, contexts)
        else:
            closed = self._close_batch(n, values, contexts)
        # The contexts die here, after the lock: a __del__ may call back in.
        # `values` stays allocated until the end, as `contexts` points into it.
        try:
            for i in range(closed):
                Py_DECREF(<object>contexts[i])   # drops the reference the slot owned
        finally:
            PyMem_RawFree(values)
        return closed

    cdef Py_ssize_t _close_batch(self, Py_ssize_t n, uint64_t *values,
                                 PyObject **contexts) noexcept nogil:
        cdef Py_ssize_t i, slot, closed = 0
        wsp_lock_acquire(&self._lock)
        for i in range(n):
            slot = slots_find(&self._slots, values[i])
            if slot >= 0:
                contexts[closed] = <PyObject *>self._slots.payload[slot]
                closed += 1
                slots_release(&self._slots, slot)
        wsp_lock_release(&self._lock)
        return closed

    # -- buffer forms: no Python int per handle ---------------------------------

    def create_into(self, buf, context=None):
        """Fill every item of `buf` with a new handle, all sharing `context`,
        and return how many (``len(buf)``).  The same handles, in the same
        order, as ``create_many(len(buf), context)``.

        `buf`: a writable, one-dimensional, C-contiguous buffer of unsigned
        64-bit items (``array('Q')``, ``memoryview.cast('Q')``, a numpy
        ``uint64`` array), else TypeError.  WSAENOBUFS if they do not all
        fit: nothing is created and `buf` is left as it was.  One lock for
        the batch; long batches run without the GIL, writing straight into
        the buffer."""
        cdef Py_buffer view
        cdef Py_ssize_t count, i
        cdef size_t room
        cdef uint64_t *out
        cdef uint64_t *tmp = NULL
        cdef int rc
        u64_buffer(buf, &view, True, "create_into() argument 'buf'")
        try:
            count = view.shape[0]
            if count == 0:
                return 0
            # Room first, as in create_many: nothing is touched for a batch
            # that cannot fit.  _create_batch checks again under the lock.
            wsp_lock_acquire(&self._lock)
            room = self._slots.max_live - self._slots.live
            wsp_lock_release(&self._lock)
            if <size_t>count > room:
                raise _error(WSAENOBUFS)
            out = <uint64_t *>view.buf
            if not aligned8(out):
                tmp = <uint64_t *>PyMem_RawMalloc(<size_t>count * sizeof(uint64_t))
                if tmp == NULL:
                    raise MemoryError()
                out = tmp
            for i in range(count):
                Py_INCREF(context)
            if count >= NOGIL_BATCH:
                with nogil:
                    rc = self._create_batch(count, <uintptr_t><PyObject *>context, out)
            else:
                rc = self._create_batch(count, <uintptr_t><PyObject *>context, out)
            if rc != SLOT_OK:
                for i in range(count):
                    Py_DECREF(context)   # the caller still holds one: no code runs
                if rc == SLOT_NOMEM:
                    raise MemoryError()
                raise _error(WSAENOBUFS)
            if tmp != NULL:
                memcpy(view.buf, tmp, <size_t>count * sizeof(uint64_t))
            return count
        finally:
            PyMem_RawFree(tmp)
            PyBuffer_Release(&view)

    def close_from(self, buf):
        """Close every live handle in `buf`, a one-dimensional C-contiguous
        buffer of unsigned 64-bit items (read-only is fine; TypeError for
        anything else); unknown, stale and duplicate ones are skipped.
        Return how many were closed.  One lock for the batch; long batches
        run without the GIL, reading straight from the buffer."""
        cdef Py_buffer view
        cdef Py_ssize_t n, i, closed = 0
        cdef PyObject *stack_contexts[STACK_HANDLES]
        cdef PyObject **contexts = stack_contexts
        cdef uint64_t *values
        cdef void *block = NULL
        cdef bint misaligned
        u64_buffer(buf, &view, False, "close_from() argument 'buf'")
        try:
            n = view.shape[0]
            values = <uint64_t *>view.buf
            misaligned = not aligned8(values)
            if misaligned or n > STACK_HANDLES:
                # One block: a copy of the values when they are misaligned,
                # then the context pointers.
                block = PyMem_RawMalloc(<size_t>n * (sizeof(PyObject *) +
                                                     (sizeof(uint64_t) if misaligned else 0)))
                if block == NULL:
                    raise MemoryError()
                if misaligned:
                    values = <uint64_t *>block
                    memcpy(values, view.buf, <size_t>n * sizeof(uint64_t))
                    contexts = <PyObject **>(values + n)
                else:
                    contexts = <PyObject **>block
            if n >= NOGIL_BATCH:
                with nogil:
                    closed = self._close_batch(n, values, contexts)
            else:
                closed = self._close_batch(n, values, contexts)
        finally:
            PyBuffer_Release(&view)
        # The contexts die after the lock and after the buffer is given back:
        # a __del__ may call back in, or resize the array that held the handles.
        try:
            for i in range(closed):
                Py_DECREF(<object>contexts[i])   # drops the reference the slot owned
        finally:
            PyMem_RawFree(block)
        return closed

    def __repr__(self):
        return f"<wsp._core.HandleTable live={len(self)} max_handles={self.max_handles}>"
