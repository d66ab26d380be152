"""wsp.aio tests: what a test leaves to the garbage collector (and the
ResourceWarnings asyncio gives for it) is collected before the next test
starts, so a warning names the test that caused it."""
from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True)
def _collect_after():
    yield
    gc.collect()
