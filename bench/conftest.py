"""Shared setup of the benchmark suite.

The suite exists to measure the *compiled* core, so it imports ``wsp._core``
directly and refuses to run without it: silently benchmarking the pure-Python
twin in its place would produce numbers that look plausible and mean nothing.
"""
from __future__ import annotations

import threading

try:
    from wsp import _core
except ImportError as exc:  # pragma: no cover - only when the build is missing
    raise ImportError(
        "bench/ measures the compiled core, but `from wsp import _core` failed "
        f"({exc}). Build and install the extension first (pip install '.[bench]'), "
        "or point PYTHONPATH at a source tree where it was built in place."
    ) from exc

if not hasattr(_core, "_CallFloor"):  # pragma: no cover
    raise ImportError(
        f"{_core.__file__} has no _CallFloor: this build of wsp._core is older "
        "than the benchmark suite; rebuild it."
    )

# wsp always runs with a second thread alive, and some costs (glibc's
# single-thread fast paths among them) change for good once a process has
# started one.  Start and finish one before anything is measured so that
# every entry -- wsp's and its peers' -- is measured in that same state.
_warm = threading.Thread(target=lambda: None, name="bench-second-thread")
_warm.start()
_warm.join()

