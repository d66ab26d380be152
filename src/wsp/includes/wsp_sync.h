/*
 * wsp_sync.h -- the few synchronisation primitives the wsp core needs, in
 * portable C so that every path that uses them can run without the GIL.
 *
 * Why a spinlock and not a pthread mutex: the core's critical sections are a
 * handful of loads and stores (pop a free slot, bump a generation, copy a
 * 32-byte packet).  Measured on the project's machines an uncontended
 * pthread_mutex lock+unlock costs ~15 ns and a PyThread lock ~37 ns, against
 * an 18 ns Python->Cython call; an atomic exchange plus a release store costs
 * ~5 ns.  Contention is rare and short, so waiters spin briefly and then yield
 * the CPU.  Nothing ever blocks (sleeps) while holding one of these locks:
 * threads that must wait for work park on a PyThread lock *after* releasing
 * the spinlock (see the waiter lists in the .pxi files).
 *
 * Rules for callers (kept by the .pxi code):
 *   - never touch a Python object that could run code (no DECREF) while
 *     holding a wsp_lock_t; INCREF and pointer stores are fine;
 *   - never acquire the GIL while holding a wsp_lock_t.
 */
#ifndef WSP_SYNC_H
#define WSP_SYNC_H

#include <stdint.h>

#if defined(_MSC_VER)
#  include <windows.h>
#  include <intrin.h>
typedef volatile long wsp_lock_t;
static __inline int wsp_lock_try(wsp_lock_t *l) {
    return _InterlockedExchange(l, 1) == 0;
}
static __inline void wsp_lock_release(wsp_lock_t *l) {
    _InterlockedExchange(l, 0);
}
static __inline int wsp_lock_peek(wsp_lock_t *l) { return *l != 0; }
#  define WSP_CPU_RELAX() YieldProcessor()
#  define WSP_YIELD() SwitchToThread()
#else
#  include <sched.h>
#  include <time.h>
typedef int wsp_lock_t;
static inline int wsp_lock_try(wsp_lock_t *l) {
    return __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) == 0;
}
static inline void wsp_lock_release(wsp_lock_t *l) {
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}
static inline int wsp_lock_peek(wsp_lock_t *l) {
    return __atomic_load_n(l, __ATOMIC_RELAXED) != 0;
}
#  if defined(__x86_64__) || defined(__i386__)
#    define WSP_CPU_RELAX() __builtin_ia32_pause()
#  elif defined(__aarch64__)
#    define WSP_CPU_RELAX() __asm__ __volatile__("yield")
#  else
#    define WSP_CPU_RELAX() ((void)0)
#  endif
#  define WSP_YIELD() sched_yield()
#endif

/* Spin on a plain load (no cache-line ping-pong), then give the CPU away:
 * on a 2-core machine the holder may be preempted, and spinning for its
 * whole time slice would waste it. */
static void wsp_lock_acquire_slow(wsp_lock_t *l) {
    unsigned int spins = 0;
    for (;;) {
        while (wsp_lock_peek(l)) {
            if (spins < 100) { spins++; WSP_CPU_RELAX(); }
            else { WSP_YIELD(); }
        }
        if (wsp_lock_try(l)) return;
    }
}

static inline void wsp_lock_acquire(wsp_lock_t *l) {
    if (wsp_lock_try(l)) return;
    wsp_lock_acquire_slow(l);
}

/* Monotonic clock in microseconds, for deadlines of timed waits. */
static inline int64_t wsp_monotonic_us(void) {
#if defined(_MSC_VER)
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (int64_t)((double)now.QuadPart * 1e6 / (double)freq.QuadPart);
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
#endif
}

#endif /* WSP_SYNC_H */
