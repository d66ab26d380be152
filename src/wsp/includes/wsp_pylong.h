/*
 * wsp_pylong.h -- read a small non-negative Python int without a call.
 *
 * Handles of small tables and most packet fields fit in one CPython
 * "digit" (< 2**30).  Reading such an int inline saves the out-of-line call
 * into PyLong_AsLongLongAndOverflow on every query/close/post, ~2 ns of a
 * ~20 ns operation.  Anything else (bigger ints, negative ints, other
 * implementations, the limited API) returns 0 and the caller takes the
 * general path, so this is only ever a shortcut, never a different answer.
 *
 * The caller guarantees PyLong_Check(o).
 */
#ifndef WSP_PYLONG_H
#define WSP_PYLONG_H

#include <Python.h>
#include <stdint.h>

static inline int wsp_small_nonneg_long(PyObject *o, uint64_t *out) {
#if defined(PYPY_VERSION) || defined(Py_LIMITED_API) || defined(GRAALVM_PYTHON)
    (void)o; (void)out;
    return 0;
#elif PY_VERSION_HEX >= 0x030C0000
    /* 3.12+: the int layout is private, but these two are public
     * (unstable-tier) API made for exactly this. */
    if (PyUnstable_Long_IsCompact((PyLongObject *)o)) {
        Py_ssize_t v = PyUnstable_Long_CompactValue((PyLongObject *)o);
        if (v >= 0) {
            *out = (uint64_t)v;
            return 1;
        }
    }
    return 0;
#else
    /* Up to 3.11: ob_size is the signed digit count. */
    Py_ssize_t size = Py_SIZE(o);
    if (size == 1) {
        *out = (uint64_t)((PyLongObject *)o)->ob_digit[0];
        return 1;
    }
    if (size == 0) {
        *out = 0;
        return 1;
    }
    return 0;
#endif
}

#endif /* WSP_PYLONG_H */
