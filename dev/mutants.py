#!/usr/bin/env python3
"""Mutation run over wsp's SPI and simulated network: how many planted bugs
does the test suite catch?

Each mutant is a targeted edit of ``src/wsp/spi/*.py`` or ``src/wsp/sim/*.py``
that models a real bug against a rule the seed pages or SPEC pin (an error
code, a completion action, a linger branch, flow-control arithmetic, ...).
The run never touches the working checkout: it copies the committed HEAD
(``git archive HEAD``) into one temporary directory per job, checks that the
unmutated suite passes there, then for each mutant applies the edit,
byte-compiles the file, runs the test suite on the pure-Python core
(``WSP_NO_EXTENSIONS=1``) and restores the file.

Tests run in two passes, both with ``-x``: first the test files relevant to
the mutated module (so a kill is quick), then, if those pass, the rest of the
suite -- a survivor has survived the whole suite.  ``--relevant-only`` skips
the second pass.

The copy has no compiled extension (it is a build product, not committed),
so the one test that expects ``import wsp`` to pick the compiled core when
``WSP_NO_EXTENSIONS`` is empty is deselected.

Usage::

    python dev/mutants.py [--jobs N] [--only ID,...] [--json FILE] [--list]
                          [--repo PATH] [--relevant-only] [--timeout S] [--add PATH]
                          [--deselect NODEID]

Results: ``killed`` (a test failed), ``survived`` (every test passed),
``timeout`` (the run exceeded ``--timeout`` seconds: counted as detected),
``invalid`` (the snippet is not in HEAD exactly once, or the mutated file
does not compile: not counted).  A snippet that a refactoring moved out of
its named file is looked for in the other files of ``src/wsp/spi/`` and
``src/wsp/sim/``.  Exit status 0 once the run is complete
(2 if the baseline fails or the arguments are bad).
"""
from __future__ import annotations

import argparse
import json
import os
import py_compile
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SPI = "src/wsp/spi/"
SIM = "src/wsp/sim/"

# (id, file, exact original snippet (occurs exactly once), replacement, the bug it plants)
MUTANTS: list[tuple[str, str, str, str, str]] = [
    # ---------------------------------------------------------------- sim/close.py
    ("linger-inverted", SIM + "close.py",
     "hard = not delivered              # time-out: terminate before returning",
     "hard = delivered              # time-out: terminate before returning",
     "linger time-out branch inverted: reset when delivered, graceful when timed out"),
    ("hard-graceful-swap", SIM + "close.py",
     "hard = bool(sock.linger_onoff) and sock.linger_seconds == 0",
     "hard = not (bool(sock.linger_onoff) and sock.linger_seconds == 0)",
     "graceful and hard close swapped (SO_DONTLINGER resets, l_linger 0 is graceful)"),
    ("linger-ms", SIM + "close.py",
     "deadline = (time.monotonic() + sock.linger_seconds if clock is None",
     "deadline = (time.monotonic() + sock.linger_seconds / 1000 if clock is None",
     "l_linger taken as milliseconds: the linger wait gives up at once"),
    ("linger-ms-clocked", SIM + "close.py",
     "else clock.deadline(sock.linger_seconds))",
     "else clock.deadline(sock.linger_seconds / 1000))",
     "on a clocked network, l_linger taken as milliseconds of simulated time"),
    # ---------------------------------------------------------- simulated time (issue 13)
    ("jitter-reorders", SIM + "timed.py",
     "due = max(links.wire(src, dst, link, n, now) + links.delay(link), timing.last_arrival)",
     "due = links.wire(src, dst, link, n, now) + links.delay(link)",
     "jitter may reorder a stream: a segment can arrive before the one sent ahead of it"),
    ("window-ignored", SIM + "timed.py",
     "        if self.window > 0:\n            return True",
     "        if True:\n            return True",
     "no TCP window: a sender puts everything in flight, whatever the peer's buffer"),
    ("connect-one-way", SIM + "timed.py",
     "        due = self.clock.now() + back\n        server.timing.last_arrival = due",
     "        due = self.clock.now()\n        server.timing.last_arrival = due",
     "a connect completes after one way instead of a round trip (the SYN-ACK takes no time)"),
    ("bandwidth-parallel", SIM + "links.py",
     "start = max(now, self._busy_until.get(key, 0.0))",
     "start = now",
     "bytes of one direction leave at once instead of one after another: a burst never queues"),
    ("perfect-never", SIM + "links.py",
     "return not (self.get(src, dst).timed or self.get(dst, src).timed)",
     "return False",
     "a link that takes no time still defers delivery to the clock's next idle moment"),
    ("idle-ignores-acting", SPI + "clock.py",
     "            if self._acting:\n                real = time.monotonic()",
     "            if False:\n                real = time.monotonic()",
     "the virtual clock jumps while a thread is still handling what a wait returned"),
    ("deadline-not-woken", SPI + "clock.py",
     "            if wait.deadline is not None and wait.deadline <= self._now and not wait.kicked:",
     "            if False:",
     "a wait whose simulated deadline passed is not woken (it ends only by its real slice)"),
    ("linger-shutdown", SIM + "close.py",
     "                    if not sock.shut_send:",
     "                    if True:",
     "non-blocking linger close keeps failing WSAEWOULDBLOCK after WSPShutdown"),
    ("close-no-notify", SIM + "close.py",
     "self._release(s, sock, hard=hard, notify=True)",
     "self._release(s, sock, hard=hard, notify=False)",
     "WSPCloseSocket cancels pending operations without their completion action"),
    ("close-abort-code", SIM + "close.py",
     "        aborted = WSA_OPERATION_ABORTED",
     "        aborted = WSAEINTR",
     "overlapped operations cancelled by close fail with WSAEINTR, not WSA_OPERATION_ABORTED"),
    ("blocked-recv-code", SIM + "close.py",
     "sock.finish_recv(entry, 0, aborted if entry.op is not None else WSAEINTR, notify)",
     "sock.finish_recv(entry, 0, aborted, notify)",
     "a receive blocked in another thread fails with WSA_OPERATION_ABORTED, not WSAEINTR"),
    ("cleanup-no-reset", SIM + "close.py",
     "they finish sending.\"\"\"\n"
     "        self._reset_all()",
     "they finish sending.\"\"\"\n"
     "        pass",
     "final WSPCleanup leaves open sockets open (no reset, not deallocated)"),
    ("cleanup-graceful", SIM + "close.py",
     "self._release(s, sock, hard=True, notify=False)",
     "self._release(s, sock, hard=False, notify=False)",
     "WSPCleanup closes open sockets gracefully instead of resetting them"),
    ("close-unread-graceful", SIM + "close.py",
     "            if hard or sock.reset_error or sock.recv_buf:",
     "            if hard or sock.reset_error:",
     "closing with received data unread closes gracefully instead of resetting"),
    ("no-linger-record", SIM + "close.py",
     "                    network.linger(sock)             # still delivering: keep it alive",
     "                    pass",
     "a closed socket still delivering is not counted in network.lingering"),
    ("close-in-callback", SIM + "close.py",
     "        if self.in_callback():\n"
     "            raise WinsockError(WSAEINPROGRESS, funcname)",
     "        if False:\n"
     "            raise WinsockError(WSAEINPROGRESS, funcname)",
     "WSPCloseSocket from inside the accept condition callback is not WSAEINPROGRESS"),
    ("shutdown-recv-reset", SIM + "close.py",
     "                if sock.kind == SOCK_STREAM and sock.recv_buf:\n"
     "                    self.network.reset(sock.connection, WSAECONNRESET)",
     "                if False:\n"
     "                    self.network.reset(sock.connection, WSAECONNRESET)",
     "SD_RECEIVE with unread data does not reset the connection"),
    ("cleanup-netdown", SIM + "close.py",
     "        if self.started and self.network.down:",
     "        if False:",
     "WSPCleanup while the network is down cleans up instead of failing WSAENETDOWN"),
    ("terminate-no-reset", SIM + "close.py",
     "        try:\n"
     "            self._reset_all()\n"
     "        finally:\n"
     "            super().on_terminated(process)",
     "        super().on_terminated(process)",
     "Process.terminate leaves the provider's sockets open: no reset, addresses stay bound"),
    # ---------------------------------------------------------------- sim/data.py
    ("dgram-msgsize-late", SIM + "data.py",
     "    if len(data) > MAX_DATAGRAM:                  # fails before it starts",
     "    if False:                  # fails before it starts",
     "an oversized datagram is checked after the overlapped starts (delivers a completion)"),
    ("dgram-blocking-msgsize", SIM + "data.py",
     "        if truncated and op is None:\n"
     "            raise WinsockError(WSAEMSGSIZE, funcname)",
     "        if False:\n"
     "            raise WinsockError(WSAEMSGSIZE, funcname)",
     "a truncated datagram received at once returns success instead of WSAEMSGSIZE"),
    ("dgram-peek-consumes", SIM + "data.py",
     "        if not peek:\n"
     "            sock.dgrams.popleft()",
     "        if True:\n"
     "            sock.dgrams.popleft()",
     "MSG_PEEK on a datagram socket removes the datagram"),
    ("fdwrite-rearm", SIM + "data.py",
     "        sock.rearm(FD_WRITE)\n",
     "",
     "FD_WRITE is not re-enabled after a send fails with WSAEWOULDBLOCK"),
    ("partial-send-count", SIM + "data.py",
     "        return (0, entry.offset)",
     "        return (0, len(data))",
     "a non-blocking send that took only part reports the whole length"),
    ("recv-left-fdread", SIM + "data.py",
     "        sock.rearm(FD_READ)\n"
     "        if sock.recv_buf:\n"
     "            sock.post(FD_READ)\n"
     "        sock.finish_recv(entry, n, 0)",
     "        sock.rearm(FD_READ)\n"
     "        sock.finish_recv(entry, n, 0)",
     "a stream receive that leaves data does not record FD_READ again"),
    ("dgram-port0", SIM + "data.py",
     "    if to[0] == ANY_HOST or to[1] == 0:",
     "    if to[0] == ANY_HOST:",
     "a datagram to port 0 is sent (lost) instead of failing WSAEADDRNOTAVAIL"),
    # ---------------------------------------------------------------- sim/network.py
    ("sndbuf-room", SIM + "network.py",
     "room = self.sndbuf - len(self.send_buf)",
     "room = self.sndbuf - len(self.send_buf) + 1",
     "send buffer holds SO_SNDBUF + 1 bytes (flow-control off by one)"),
    ("rcvbuf-room", SIM + "network.py",
     "room = self.rcvbuf - len(self.recv_buf)",
     "room = self.rcvbuf - len(self.recv_buf) + 1",
     "receive buffer holds SO_RCVBUF + 1 bytes (flow-control off by one)"),
    ("writable-edge", SIM + "network.py",
     "len(self.send_buf) < max(self.sndbuf, 1)",
     "len(self.send_buf) <= max(self.sndbuf, 1)",
     "a socket with a full send buffer still reports writable"),
    ("backlog", SIM + "network.py",
     "len(listener.accept_queue) >= max(listener.backlog, 1)",
     "len(listener.accept_queue) > max(listener.backlog, 1)",
     "listen backlog off by one: backlog + 1 connections are queued"),
    ("dgram-partial-flag", SIM + "network.py",
     "            entry.flags = MSG_PARTIAL if truncated else 0\n"
     "            target.finish_recv(entry, n, WSAEMSGSIZE if truncated else 0)",
     "            entry.flags = 0\n"
     "            target.finish_recv(entry, n, WSAEMSGSIZE if truncated else 0)",
     "a truncated datagram into a posted receive completes without MSG_PARTIAL"),
    ("dgram-rcvbuf", SIM + "network.py",
     "if target.dgram_bytes + len(data) > target.rcvbuf:",
     "if target.dgram_bytes + len(data) >= target.rcvbuf:",
     "a datagram that exactly fills the receive buffer is dropped (off by one)"),
    ("peek-consumes", SIM + "network.py",
     "        if not entry.peek:\n"
     "            del self.recv_buf[:n]",
     "        if True:\n"
     "            del self.recv_buf[:n]",
     "MSG_PEEK on a stream removes the bytes from the receive buffer"),
    ("fin-no-fdclose", SIM + "network.py",
     "        self.post(FD_CLOSE, 0)\n"
     "        self.wake()",
     "        self.wake()",
     "the peer of a graceful close gets no FD_CLOSE"),
    ("reset-fdclose-code", SIM + "network.py",
     "            side.post(FD_CLOSE, close_error)",
     "            side.post(FD_CLOSE, 0)",
     "FD_CLOSE after a reset/abort carries error 0 instead of WSAECONNABORTED/RESET"),
    ("udp-connected-filter", SIM + "network.py",
     "        if target.remote is not None and target.remote != sender.local:",
     "        if False:",
     "a connected datagram socket accepts datagrams from any sender"),
    ("port-max", SIM + "network.py",
     "    if not 0 <= port <= 0xFFFF:",
     "    if not 0 <= port < 0xFFFF:",
     "port 65535 refused as WSAEFAULT (address check off by one)"),
    ("reuseaddr-one-side", SIM + "network.py",
     "if clash and not (sock.reuseaddr and other.reuseaddr):",
     "if clash and not (sock.reuseaddr or other.reuseaddr):",
     "SO_REUSEADDR on only one of two sockets lets them share an address"),
    ("wildcard-clash", SIM + "network.py",
     "clash = other.local[0] == host or ANY_HOST in (other.local[0], host)",
     "clash = other.local[0] == host",
     "binding 0.0.0.0:p does not clash with 127.0.0.1:p"),
    ("connect-port0", SIM + "network.py",
     "        if addr[0] == ANY_HOST or addr[1] == 0:",
     "        if addr[0] == ANY_HOST:",
     "connect to port 0 refused as WSAECONNREFUSED instead of WSAEADDRNOTAVAIL"),
    ("abort-vs-reset", SIM + "network.py",
     "close_error: int = WSAECONNABORTED) -> None:",
     "close_error: int = WSAECONNRESET) -> None:",
     "the peer of a hard close gets FD_CLOSE with WSAECONNRESET, not WSAECONNABORTED"),
    ("shutrecv-data-no-reset", SIM + "socket.py",
     "        if start < size and self.shut_recv:\n"
     "            # Shut down for receiving",
     "        if False:\n"
     "            # Shut down for receiving",
     "data arriving after SD_RECEIVE is buffered instead of resetting the connection"),
    # ---------------------------------------------------------------- sim/provider.py
    ("block-intr-code", SIM + "provider.py",
     "                if sock.interrupted:\n"
     "                    raise WinsockError(WSAEINTR, funcname)",
     "                if sock.interrupted:\n"
     "                    raise WinsockError(WSA_OPERATION_ABORTED, funcname)",
     "a blocked accept/linger wait interrupted by close: WSA_OPERATION_ABORTED, not WSAEINTR"),
    ("fionread-dgram", SIM + "provider.py",
     "result = len(sock.dgrams[0][0]) if sock.dgrams else 0",
     "result = sock.dgram_bytes",
     "FIONREAD on a datagram socket gives all queued bytes, not the first datagram's size"),
    ("defer-code", SIM + "provider.py",
     "                raise WinsockError(WSATRY_AGAIN, funcname)",
     "                raise WinsockError(WSAEWOULDBLOCK, funcname)",
     "CF_DEFER gives WSAEWOULDBLOCK instead of WSATRY_AGAIN"),
    ("dontlinger-inverted", SIM + "provider.py",
     "sock.linger_onoff = 0 if self._flag(value) else 1",
     "sock.linger_onoff = 1 if self._flag(value) else 0",
     "SO_DONTLINGER set turns linger on (inverted)"),
    ("check-order", SIM + "provider.py",
     "        sock = self.sim_socket(s, funcname)\n"
     "        int_arg(backlog, \"backlog\")",
     "        int_arg(backlog, \"backlog\")\n"
     "        sock = self.sim_socket(s, funcname)",
     "WSPListen checks the backlog's type before the socket (Winsock: socket first)"),
    ("accept-blocking", SIM + "provider.py",
     "            server.nonblocking = sock.nonblocking",
     "            server.nonblocking = False",
     "an accepted socket does not inherit the listener's non-blocking mode"),
    ("accept-no-eventselect", SIM + "provider.py",
     "            server.event, server.event_mask = sock.event, sock.event_mask",
     "            server.event, server.event_mask = None, 0",
     "an accepted socket does not inherit the listener's WSPEventSelect registration"),
    ("accept-left-fdaccept", SIM + "provider.py",
     "            sock.rearm(FD_ACCEPT)\n"
     "            if sock.accept_queue:\n"
     "                sock.post(FD_ACCEPT)",
     "            sock.rearm(FD_ACCEPT)",
     "an accept that leaves connections queued does not record FD_ACCEPT again"),
    ("accept-eof-fdclose", SIM + "provider.py",
     "            if server.eof:\n"
     "                server.post(FD_CLOSE, 0)",
     "            if False:\n"
     "                server.post(FD_CLOSE, 0)",
     "a connection accepted after its peer closed gets no FD_CLOSE"),
    ("rcvbuf-grow-no-pump", SIM + "provider.py",
     "                    if sock.peer is not None:\n"
     "                        sock.peer.pump()",
     "                    pass",
     "enlarging SO_RCVBUF does not let the peer's waiting bytes flow in"),
    ("protocol-code", SIM + "provider.py",
     "code = WSAEPROTOTYPE if protocol in (IPPROTO_TCP, IPPROTO_UDP) else WSAEPROTONOSUPPORT",
     "code = WSAEPROTONOSUPPORT",
     "WSPSocket(SOCK_STREAM, IPPROTO_UDP): WSAEPROTONOSUPPORT instead of WSAEPROTOTYPE"),
    ("sndbuf-no-pump", SIM + "provider.py",
     "                    sock.sndbuf = size\n"
     "                    sock.pump()",
     "                    sock.sndbuf = size",
     "enlarging SO_SNDBUF does not move waiting sends into the send buffer"),
    # ---------------------------------------------------------------- sim/select.py
    ("enum-no-reset", SIM + "select.py",
     "            self.process.WSAResetEvent(event, funcname)",
     "            pass",
     "WSPEnumNetworkEvents does not reset the event it is given"),
    ("eventselect-blocking", SIM + "select.py",
     "            sock.nonblocking = True\n"
     "            if sock.connect_error is not None:",
     "            if sock.connect_error is not None:",
     "WSPEventSelect leaves the socket blocking"),
    ("eventselect-writable", SIM + "select.py",
     "                if sock.writable():\n"
     "                    sock.post(FD_WRITE)\n"
     "                if sock.eof:",
     "                if sock.eof:",
     "WSPEventSelect on an already writable socket does not record FD_WRITE at once"),
    # ---------------------------------------------------------------- spi/application.py
    ("wsacleanup-refcount", SPI + "application.py",
     "            if self._wsa_startups > 1:",
     "            if self._wsa_startups > 2:",
     "WSACleanup reference count off by one: the penultimate call cleans up"),
    ("wsastartup-version-bytes", SPI + "application.py",
     "((version & 0xFF), (version >> 8) & 0xFF) < (2, 2)",
     "(((version >> 8) & 0xFF), version & 0xFF) < (2, 2)",
     "WSAStartup reads the version WORD's bytes swapped"),
    # ---------------------------------------------------------------- spi/catalog.py
    ("chain-max", SPI + "catalog.py",
     "if not 2 <= len(ids) <= MAX_PROTOCOL_CHAIN:",
     "if not 2 <= len(ids) < MAX_PROTOCOL_CHAIN:",
     "a protocol chain of exactly MAX_PROTOCOL_CHAIN (7) entries is refused"),
    ("catalog-code", SPI + "catalog.py",
     "        code = (WSAEPROTONOSUPPORT if seen_type else\n"
     "                WSAESOCKTNOSUPPORT if seen_af else WSAEAFNOSUPPORT)",
     "        code = (WSAESOCKTNOSUPPORT if seen_type else\n"
     "                WSAEPROTONOSUPPORT if seen_af else WSAEAFNOSUPPORT)",
     "WSASocket with no matching entry: WSAESOCKTNOSUPPORT and WSAEPROTONOSUPPORT swapped"),
    # ---------------------------------------------------------------- spi/checks.py
    ("ms-units", SPI + "checks.py",
     "return time.monotonic() + ms / 1000.0",
     "return time.monotonic() + ms / 10000.0",
     "millisecond time-outs are ten times too short"),
    # ---------------------------------------------------------------- spi/engine.py
    ("claim-once", SPI + "engine.py",
     "            del ops[op]\n"
     "        except KeyError:\n"
     "            return False",
     "            ops.pop(op, None)\n"
     "        except KeyError:\n"
     "            return False",
     "exactly-once claim removed: a second complete_overlapped delivers again"),
    ("event-not-set", SPI + "engine.py",
     "            self.events.signal_if_open(overlapped.hEvent)   # a closed event: nothing",
     "            pass",
     "completion without a routine does not signal the overlapped's event"),
    ("port-key", SPI + "engine.py",
     "self.ports.post(port, error, nbytes, socket_entry.key,",
     "self.ports.post(port, error, nbytes, 0,",
     "completion packet posted with key 0 instead of the socket's completion key"),
    ("routine-thread", SPI + "engine.py",
     "thread_handle = registry.duplicate(thread_id.ThreadHandle)",
     "thread_handle = registry.open()",
     "completion routine queued to the calling thread, not the thread thread_id names"),
    ("routine-with-port", SPI + "engine.py",
     "            if socket_entry.port is not None:\n"
     "                raise WinsockError(WSAEINVAL, funcname)",
     "            if False:\n"
     "                raise WinsockError(WSAEINVAL, funcname)",
     "completion routine on a socket associated with a port accepted (should be WSAEINVAL)"),
    ("routine-signals", SPI + "engine.py",
     "self._run_routine, (op, error, nbytes, flags))\n"
     "            return\n",
     "self._run_routine, (op, error, nbytes, flags))\n",
     "an operation with a completion routine also signals its event / posts a packet"),
    ("start-no-reset", SPI + "engine.py",
     "            self.events.reset_if_open(ov.hEvent)",
     "            pass",
     "starting an overlapped operation does not reset its event"),
    ("double-start", SPI + "engine.py",
     "        if ov.operation is not None:\n"
     "            if thread_handle:",
     "        if False:\n"
     "            if thread_handle:",
     "a second operation on a pending overlapped is accepted (should be WSAEINVAL)"),
    ("cancel-thread-leak", SPI + "engine.py",
     "        _record(op, error, 0, 0)\n"
     "        if op.thread_handle:\n"
     "            self._registry().close(op.thread_handle)\n"
     "        return True",
     "        _record(op, error, 0, 0)\n"
     "        return True",
     "a silently cancelled operation keeps its routine's thread handle open (leak)"),
    # ---------------------------------------------------------------- spi/ports.py
    ("gqcs-timeout", SPI + "ports.py",
     "return (WAIT_TIMEOUT, 0, 0, None)",
     "return (0, 0, 0, None)",
     "timed GetQueuedCompletionStatus returns rc 0 instead of WAIT_TIMEOUT on time-out"),
    ("gqcs-poll", SPI + "ports.py",
     "return (ERROR_ABANDONED_WAIT_0 if queue.closed else WAIT_TIMEOUT, 0, 0, None)",
     "return (WAIT_TIMEOUT, 0, 0, None)",
     "polling GetQueuedCompletionStatus on a closed port says WAIT_TIMEOUT, not abandoned"),
    ("iocp-reassociate", SPI + "ports.py",
     "            fail = entry.port is not None          # one association per handle",
     "            fail = False          # one association per handle",
     "a socket may be associated with a second completion port"),
    ("iocp-key-max", SPI + "ports.py",
     "if not 0 <= key < _U64 or concurrency < 0:",
     "if not 0 <= key < _U64 - 1 or concurrency < 0:",
     "CreateIoCompletionPort refuses the largest completion key 2**64-1"),
    ("gqcsex-zero", SPI + "ports.py",
     "        if max_entries < 1:\n"
     "            raise WinsockError(WSA_INVALID_PARAMETER, funcname)",
     "        if max_entries < 0:\n"
     "            raise WinsockError(WSA_INVALID_PARAMETER, funcname)",
     "GetQueuedCompletionStatusEx accepts max_entries 0 (should be WSA_INVALID_PARAMETER)"),
    # ---------------------------------------------------------------- spi/provider.py
    ("cleanup-notifies", SPI + "provider.py",
     "process.cancel_overlapped(op, notify=False)",
     "process.cancel_overlapped(op, notify=True)",
     "final WSPCleanup performs the completion action of cancelled operations"),
    ("startup-refcount", SPI + "provider.py",
     "            self._startup_count += 1\n",
     "            self._startup_count = 1\n",
     "WSPStartup not reference counted: the first WSPCleanup already cleans up"),
    ("cleanup-final-early", SPI + "provider.py",
     "final = self._startup_count == 0",
     "final = self._startup_count <= 1",
     "WSPCleanup reference count off by one: the penultimate call does the cleanup"),
    ("version-bytes", SPI + "provider.py",
     "return (version & 0xFF, (version >> 8) & 0xFF)",
     "return ((version >> 8) & 0xFF, version & 0xFF)",
     "WSPStartup reads the version WORD's bytes swapped (major is the low byte)"),
    ("cleanup-code", SPI + "provider.py",
     "raise WinsockError(WSANOTINITIALISED, \"WSPCleanup\")",
     "raise WinsockError(WSAEINVAL, \"WSPCleanup\")",
     "WSPCleanup without WSPStartup fails with WSAEINVAL instead of WSANOTINITIALISED"),
    ("gor-notsock", SPI + "provider.py",
     "        if process.find_socket(s) is None:\n"
     "            raise WinsockError(WSAENOTSOCK, funcname)",
     "        if process.find_socket(s) is None:\n"
     "            raise WinsockError(WSAEINVAL, funcname)",
     "base WSPGetOverlappedResult on a non-socket: WSAEINVAL instead of WSAENOTSOCK"),
    ("gor-incomplete", SPI + "provider.py",
     "            if not wait:\n"
     "                raise WinsockError(WSA_IO_INCOMPLETE, funcname)",
     "            if not wait:\n"
     "                return (0, 0)",
     "WSPGetOverlappedResult(wait=False) on a pending operation returns instead of WSA_IO_INCOMPLETE"),
    ("startup-other-process", SPI + "provider.py",
     "if self._startup_count and upcalls.process is not self._process:",
     "if False:",
     "a started provider accepts WSPStartup with another process's upcalls"),
    # ---------------------------------------------------------------- spi/structs.py
    ("linger-struct-max", SPI + "structs.py",
     "            if not 0 <= value <= 0xFFFF:            # u_short in the C structure",
     "            if not 0 <= value < 0xFFFF:            # u_short in the C structure",
     "Linger(l_onoff, 65535) refused (u_short bound off by one)"),
    # ---------------------------------------------------------------- spi/upcalls.py
    ("closethread-code", SPI + "upcalls.py",
     "raise WinsockError(WSAEINVAL, \"WPUCloseThread\") from None",
     "raise WinsockError(WSAENOTSOCK, \"WPUCloseThread\") from None",
     "WPUCloseThread of a closed thread id: WSAENOTSOCK instead of WSAEINVAL"),
    ("complete-code", SPI + "upcalls.py",
     "        if type(entry) is not SocketEntry:\n"
     "            raise WinsockError(WSAEINVAL, funcname)",
     "        if type(entry) is not SocketEntry:\n"
     "            raise WinsockError(WSAENOTSOCK, funcname)",
     "WPUCompleteOverlappedRequest on a non-socket: WSAENOTSOCK instead of WSAEINVAL"),
    ("upcalls-uninit", SPI + "upcalls.py",
     "        if not process.initialised:\n"
     "            raise WinsockError(WSANOTINITIALISED, funcname)\n"
     "        return process",
     "        if False:\n"
     "            raise WinsockError(WSANOTINITIALISED, funcname)\n"
     "        return process",
     "WPU* upcalls work before any WSPStartup (should be WSANOTINITIALISED)"),
    ("complete-other-socket", SPI + "upcalls.py",
     "        elif op.socket != s:",
     "        elif False:",
     "WPUCompleteOverlappedRequest completes an operation pending on another socket"),
    ("ifs-handle-zero", SPI + "upcalls.py",
     "if handle in (0, INVALID_SOCKET) or handle < 0:",
     "if handle < 0:",
     "WPUModifyIFSHandle accepts 0 and INVALID_SOCKET (should be WSAEINVAL)"),
    # ---------------------------------------------------------------- spi/waits.py
    ("wfme-index", SPI + "waits.py",
     "                        return WSA_WAIT_EVENT_0 + i",
     "                        return WSA_WAIT_EVENT_0",
     "WSAWaitForMultipleEvents reports index 0 whichever event is signalled"),
    ("sleepex-rc", SPI + "waits.py",
     "            if registry.run_apcs(me):\n"
     "                return WAIT_IO_COMPLETION",
     "            if registry.run_apcs(me):\n"
     "                return 0",
     "alertable SleepEx that ran APCs returns 0 instead of WAIT_IO_COMPLETION"),
    ("wfme-max", SPI + "waits.py",
     "if not 1 <= len(handles) <= WSA_MAXIMUM_WAIT_EVENTS:",
     "if not 1 <= len(handles) < WSA_MAXIMUM_WAIT_EVENTS:",
     "WSAWaitForMultipleEvents refuses exactly WSA_MAXIMUM_WAIT_EVENTS (64) events"),
]

# Test files run first for a mutant of a module (quick kills); the rest of the
# suite runs after them unless --relevant-only.
RELEVANT = {
    SPI: ["tests/spi/test_*.py", "tests/sim/test_seed_*.py"],
    SIM: ["tests/sim/test_*.py", "tests/spi/test_mutant_guards.py"],
}

# Needs the compiled core, which a copy of HEAD does not have (see the docstring).
DESELECT = ["tests/test_selection.py::test_wsp_no_extensions_at_import_time[-None]"]


@dataclass
class Result:
    id: str
    file: str
    description: str
    result: str
    seconds: float
    detail: str = ""
    passes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ the copies
def make_copy(repo: Path, parent: Path, index: int) -> Path:
    """HEAD of `repo` in a fresh directory (the working checkout is untouched)."""
    dest = parent / f"copy{index}"
    dest.mkdir()
    archive = subprocess.Popen(["git", "-C", str(repo), "archive", "HEAD"],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait() != 0:
        raise SystemExit("git archive HEAD failed")
    # _version.py is generated at build time and git-ignored; wsp/__init__.py
    # imports __version__ from it.
    (dest / "src/wsp/_version.py").write_text(
        '__version__ = version = "0.0.0"\n__version_tuple__ = version_tuple = (0, 0, 0)\n')
    return dest


def test_env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(WSP_NO_EXTENSIONS="1", PYTHONPATH=str(copy / "src"),
               # No bytecode: a restored file must never be shadowed by the
               # mutant's .pyc (same size, same mtime second).
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run_pytest(copy: Path, targets: list[str], ignore: list[str], timeout: float,
               per_test_timeout: int) -> tuple[str, str]:
    """Run pytest in `copy`; ('passed' | 'failed' | 'timeout', detail)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--timeout", str(per_test_timeout), *targets]
    cmd += [f"--deselect={d}" for d in DESELECT]
    cmd += [f"--ignore={i}" for i in ignore]
    proc = subprocess.Popen(cmd, cwd=copy, env=test_env(copy), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)      # its own session: pytest and children
        proc.communicate()
        return "timeout", f"run exceeded {timeout:.0f} s"
    if proc.returncode == 0:
        return "passed", ""
    if proc.returncode == 5:                     # nothing collected: nothing to fail
        return "passed", "no tests collected"
    failed = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", out, re.M)
    if "Timeout" in out and re.search(r"\+{5,} Timeout \+{5,}", out):
        return "timeout", (failed[0] if failed else "pytest-timeout fired")
    if failed:
        return "failed", failed[0]
    tail = [line for line in out.strip().splitlines() if line.strip()][-1:]
    return "failed", f"exit {proc.returncode}: {tail[0] if tail else ''}"


def relevant_files(copy: Path, file: str) -> list[str]:
    patterns = next((p for prefix, p in RELEVANT.items() if file.startswith(prefix)), [])
    found = sorted({str(p.relative_to(copy)) for pat in patterns for p in copy.glob(pat)})
    return found


# ------------------------------------------------------------------ one mutant
def locate(copy: Path, mutant: tuple[str, str, str, str, str]) -> tuple[str, str]:
    """(file, '') where the mutant applies, or ('', why not).  The snippet
    must occur exactly once in the named file; if the file is gone or lacks
    it (code moved by a refactoring), the one file of src/wsp/spi/ and
    src/wsp/sim/ that holds it exactly once stands in."""
    _, file, original, replacement, _ = mutant
    if original == replacement:
        return "", "replacement equals the original"
    path = copy / file
    count = path.read_text().count(original) if path.is_file() else 0
    if count == 1:
        return file, ""
    if count > 1:
        return "", f"snippet occurs {count} times in {file}"
    hits = [(str(p.relative_to(copy)), p.read_text().count(original))
            for d in (SPI, SIM) for p in sorted((copy / d).glob("*.py"))]
    hits = [(f, n) for f, n in hits if n]
    if len(hits) == 1 and hits[0][1] == 1:
        return hits[0][0], ""
    where = ", ".join(f"{f} x{n}" for f, n in hits) or "nowhere"
    return "", f"snippet not in {file} (found: {where})"


def run_mutant(copy: Path, mutant: tuple[str, str, str, str, str], args: argparse.Namespace,
               scratch: Path) -> Result:
    mid, file, original, replacement, description = mutant
    start = time.monotonic()
    found, why = locate(copy, mutant)
    if why:
        return Result(mid, file, description, "invalid", 0.0, why)
    file = found
    path = copy / file
    source = path.read_text()
    try:
        path.write_text(source.replace(original, replacement, 1))
        try:
            py_compile.compile(str(path), cfile=str(scratch / f"{mid}.pyc"), doraise=True)
        except py_compile.PyCompileError as exc:
            return Result(mid, file, description, "invalid", time.monotonic() - start,
                          f"does not compile: {exc.msg.strip().splitlines()[-1]}")
        first = relevant_files(copy, file)
        passes = []
        outcome, detail = "passed", ""
        if first:
            outcome, detail = run_pytest(copy, first, [], args.timeout, args.per_test_timeout)
            passes.append("relevant")
        if outcome == "passed" and not args.relevant_only:
            outcome, detail = run_pytest(copy, ["tests/"], first, args.timeout,
                                         args.per_test_timeout)
            passes.append("rest")
    finally:
        path.write_text(source)
    result = {"passed": "survived", "failed": "killed", "timeout": "timeout"}[outcome]
    return Result(mid, file, description, result, time.monotonic() - start, detail, passes)


# ------------------------------------------------------------------ the run
def print_table(results: list[Result]) -> None:
    width = max([len(r.id) for r in results] + [2])
    fwidth = max([len(r.file.removeprefix("src/wsp/")) for r in results] + [4])
    print(f"{'id':<{width}}  {'file':<{fwidth}}  {'result':<8}  {'secs':>6}  description")
    for r in results:
        print(f"{r.id:<{width}}  {r.file.removeprefix('src/wsp/'):<{fwidth}}  "
              f"{r.result:<8}  {r.seconds:6.1f}  {r.description}")
        if r.detail and r.result != "survived":
            print(f"{'':<{width}}  {'':<{fwidth}}  {'':<8}  {'':>6}    -> {r.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs (default 2)")
    parser.add_argument("--only", help="comma-separated mutant ids to run")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--json", metavar="FILE", help="write the results to FILE")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent),
                        help="the git repository (default: the one holding this script)")
    parser.add_argument("--relevant-only", action="store_true",
                        help="run only the test files relevant to the mutated module")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one pytest run may take before it counts as timeout")
    parser.add_argument("--per-test-timeout", type=int, default=60,
                        help="pytest-timeout per test (default 60)")
    parser.add_argument("--add", action="append", default=[], metavar="PATH",
                        help="also copy PATH (relative to the repository) from the working "
                             "checkout into the copies, e.g. a new test file not yet committed")
    parser.add_argument("--deselect", action="append", default=[], metavar="NODEID",
                        help="also deselect this test (e.g. one HEAD itself fails), repeatable")
    parser.add_argument("--skip-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    DESELECT.extend(args.deselect)

    ids = [m[0] for m in MUTANTS]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate mutant ids")
    mutants = MUTANTS
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in ids]
        if unknown:
            print(f"unknown mutant ids: {', '.join(unknown)}", file=sys.stderr)
            return 2
        mutants = [m for m in MUTANTS if m[0] in wanted]
    if args.list:
        for mid, file, _, _, description in mutants:
            print(f"{mid:<24} {file.removeprefix('src/wsp/'):<18} {description}")
        print(f"{len(mutants)} mutants")
        return 0
    if args.jobs < 1:
        print("--jobs must be at least 1", file=sys.stderr)
        return 2

    repo = Path(args.repo).resolve()
    t0 = time.monotonic()
    parent = Path(tempfile.mkdtemp(prefix="wsp-mutants-"))
    try:
        jobs = min(args.jobs, len(mutants)) or 1
        copies = [make_copy(repo, parent, i) for i in range(jobs)]
        for extra in args.add:
            src = repo / extra
            if not src.is_file():
                print(f"--add {extra}: no such file in {repo}", file=sys.stderr)
                return 2
            for copy in copies:
                (copy / extra).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, copy / extra)
        scratch = parent / "pyc"
        scratch.mkdir()
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        print(f"HEAD {head}: {len(mutants)} mutants, {jobs} job(s), copies in {parent}",
              flush=True)
        if args.deselect or args.add:
            print(f"deselected: {', '.join(args.deselect) or '-'}; added from the working "
                  f"checkout: {', '.join(args.add) or '-'}", flush=True)
        if not args.skip_baseline:
            b0 = time.monotonic()
            outcome, detail = run_pytest(copies[0], ["tests/"], [], args.timeout,
                                         args.per_test_timeout)
            print(f"baseline (unmutated suite, pure core): {outcome} in "
                  f"{time.monotonic() - b0:.1f} s {detail}", flush=True)
            if outcome != "passed":
                print("baseline fails: no mutation run", file=sys.stderr)
                return 2

        todo: queue.Queue = queue.Queue()
        for m in mutants:
            todo.put(m)
        results: dict[str, Result] = {}
        lock = threading.Lock()

        def worker(copy: Path) -> None:
            while True:
                try:
                    m = todo.get_nowait()
                except queue.Empty:
                    return
                r = run_mutant(copy, m, args, scratch)
                with lock:
                    results[r.id] = r
                    print(f"[{len(results)}/{len(mutants)}] {r.id}: {r.result} "
                          f"({r.seconds:.1f} s) {r.detail}", flush=True)

        threads = [threading.Thread(target=worker, args=(c,)) for c in copies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        shutil.rmtree(parent, ignore_errors=True)

    ordered = [results[m[0]] for m in mutants]
    print()
    print_table(ordered)
    counted = [r for r in ordered if r.result != "invalid"]
    killed = sum(r.result in ("killed", "timeout") for r in counted)
    timeouts = sum(r.result == "timeout" for r in counted)
    invalid = len(ordered) - len(counted)
    survivors = [r.id for r in counted if r.result == "survived"]
    elapsed = time.monotonic() - t0
    print()
    print(f"survivors: {', '.join(survivors) or 'none'}")
    print(f"{timeouts} timeout(s) counted as killed; {invalid} invalid mutant(s) not counted; "
          f"{elapsed:.0f} s with --jobs {args.jobs}")
    pct = 100.0 * killed / len(counted) if counted else 0.0
    print(f"mutation score: {killed}/{len(counted)} killed ({pct:.1f}%)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "head": head, "jobs": args.jobs, "seconds": round(elapsed, 1),
            "killed": killed, "total": len(counted), "score": round(pct, 1),
            "results": [asdict(r) for r in ordered]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
