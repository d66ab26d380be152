"""What the wsp.aio tests (tests/aio/) share: the resources a closed loop's
process must be down to, a stream echo handler, and one connection made with
the loop's sock_* methods."""
from __future__ import annotations

import asyncio

#: ``process.resources()`` of a loop that closed clean (WSACleanup done)
ZERO = {"sockets": 0, "events": 0, "ports": 0, "threads": 0, "overlapped_pending": 0,
        "overlapped_undelivered": 0, "providers": 0}


async def echo_streams(reader, writer):
    """An ``asyncio.start_server`` handler echoing every chunk until EOF."""
    try:
        while data := await reader.read(1000):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def sock_pair(loop, port=0):
    """(listener, client, server side) of one connection on 10.0.0.1 made
    with the loop's sock_* methods, each step bounded by 5 s."""
    listener = loop.wsp_socket()
    listener.bind(("10.0.0.1", port))
    listener.listen(1)
    client = loop.wsp_socket()
    accepting = asyncio.ensure_future(loop.sock_accept(listener))
    await asyncio.wait_for(loop.sock_connect(client, listener.getsockname()), 5)
    conn, _ = await asyncio.wait_for(accepting, 5)
    return listener, client, conn
