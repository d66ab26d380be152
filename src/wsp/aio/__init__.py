"""wsp.aio: asyncio over wsp (``docs/guide/asyncio.rst``).

``new_event_loop(network)`` gives an asyncio event loop whose sockets are
wsp sockets on `network`: a proactor loop (as Windows' ``ProactorEventLoop``)
driven by one completion port of the loop's own ``wsp.Process``.
``run(main, network=net)`` is ``asyncio.run`` on such a loop.  Streams
(``asyncio.open_connection``/``start_server``), ``loop.create_connection``,
``loop.create_server`` and the ``sock_*`` methods work over it; a wsp socket
for the ``sock_*`` methods comes from ``loop.wsp_socket()`` (or
:func:`socket` inside a coroutine on the loop).  With a virtual clock the
loop's time is the network's and an idle loop jumps it.  Stream connections
get the loop's own transport (:class:`WspStreamTransport`), which reads and
writes without a future per operation.
"""
from __future__ import annotations

import asyncio
import sys
from typing import Any, Coroutine, TypeVar

if sys.version_info < (3, 11):          # pragma: no cover -- CI runs 3.11
    # The loop is built on asyncio.Runner and on the hooks of 3.11's
    # BaseProactorEventLoop; older versions lack them.
    raise ImportError("wsp.aio needs Python 3.11 or newer")

from ..constants import AF_INET, SOCK_STREAM
from .loop import WspEventLoop
from .proactor import WspProactor
from .socket import WspSocket
from .transport import WspStreamTransport

__all__ = ["new_event_loop", "run", "socket", "WspEventLoop", "WspProactor", "WspSocket",
           "WspStreamTransport"]

T = TypeVar("T")


def new_event_loop(network: Any, *, provider: Any = None) -> WspEventLoop:
    """A new event loop on `network` (its sockets made through `provider`,
    default a new ``wsp.sim.Provider(network)``)."""
    return WspEventLoop(network, provider=provider)


def run(main: Coroutine[Any, Any, T], *, network: Any, provider: Any = None,
        debug: bool | None = None) -> T:
    """``asyncio.run(main)`` on a new wsp event loop on `network`; the loop
    is closed (and its process cleaned up) afterwards."""
    with asyncio.Runner(debug=debug,
                        loop_factory=lambda: new_event_loop(network, provider=provider)) as runner:
        return runner.run(main)


def socket(family: int = AF_INET, type: int = SOCK_STREAM,  # noqa: A002 -- socket's names
           proto: int = 0) -> WspSocket:
    """A new wsp socket of the running wsp loop (``loop.wsp_socket``)."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, WspEventLoop):
        raise RuntimeError("wsp.aio.socket() needs a running wsp.aio event loop")
    return loop.wsp_socket(family, type, proto)
