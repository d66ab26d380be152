"""wsp.sim.Provider: a non-IFS base service provider for AF_INET stream and
datagram sockets over a :class:`~wsp.sim.Network` (SPEC §6.3, §7).

Its socket handles come from WPUCreateSocketHandle and go back with
WPUCloseSocketHandle; its completions go out through the engine
(``Process.start_overlapped`` / ``complete_overlapped``), so SPEC §6.2's
rules hold for every operation.  The close logic follows the LPWSPCloseSocket
seed line by line (see :meth:`Provider.WSPCloseSocket`), the cleanup logic the
LPWSPCleanup seed (:meth:`Provider.on_cleanup`).

Blocking calls wait on the socket's condition (the GIL is released while
waiting), run APCs queued to the waiting thread (they are alertable), and
fail with WSAEINTR when another thread closes the socket.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from ..constants import (AF_INET, CF_ACCEPT, CF_DEFER, CF_REJECT, FD_ACCEPT, FD_ALL_EVENTS,
                         FD_CLOSE, FD_READ, FD_WRITE, FIONBIO, FIONREAD, IPPROTO_TCP, IPPROTO_UDP,
                         MSG_PARTIAL, MSG_PEEK, SD_BOTH, SD_RECEIVE, SD_SEND, SO_ACCEPTCONN,
                         SO_DONTLINGER, SO_ERROR, SO_LINGER, SO_RCVBUF, SO_REUSEADDR, SO_SNDBUF,
                         SO_TYPE, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, SOMAXCONN)
from ..errors import (WSA_IO_PENDING, WSA_OPERATION_ABORTED, WSAEADDRNOTAVAIL,
                      WSAECONNREFUSED, WSAECONNRESET, WSAENETDOWN, WSAEAFNOSUPPORT, WSAEINPROGRESS, WSAEINTR, WSAEINVAL, WSAEISCONN,
                      WSAEMSGSIZE, WSAENOPROTOOPT, WSAENOTCONN, WSAENOTSOCK, WSAEOPNOTSUPP,
                      WSAEPROTONOSUPPORT, WSAEPROTOTYPE, WSAESHUTDOWN, WSAESOCKTNOSUPPORT,
                      WSAEWOULDBLOCK, WSATRY_AGAIN, WinsockError)
from ..spi.process import Process
from ..spi.checks import deadline_after, gather, int_arg, scatter, seconds_timeout, wait_time
from ..spi.provider import ServiceProvider
from ..spi.structs import Linger, Overlapped
from .network import (ANY_HOST, MAX_DATAGRAM, Network, PendingRecv, PendingSend, SimSocket,
                      check_address)

__all__ = ["Provider"]

_MAX_BACKLOG = 200




class Provider(ServiceProvider):
    """The simulated network's TCP/UDP provider for one process."""

    description = "wsp simulated TCP/IP provider"
    #: the catalog entry its sockets are created under (WSAPROTOCOL_INFO.dwCatalogEntryId);
    #: Process.catalog.install sets the instance's own
    catalog_entry_id = 1001
    #: the (family, type, protocol) triples it serves: one base catalog entry each
    protocols = ((AF_INET, SOCK_STREAM, IPPROTO_TCP), (AF_INET, SOCK_DGRAM, IPPROTO_UDP))

    def __init__(self, network: Network) -> None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be a wsp.sim.Network, not {type(network).__name__}")
        super().__init__()
        self.network = network
        self._sockets: dict[int, SimSocket] = {}    # open handles
        self._callbacks = threading.local()          # depth of provider callbacks per thread

    # -- plumbing -------------------------------------------------------------------
    def _sock(self, s: object, funcname: str, network: bool = True) -> SimSocket:
        """The socket behind handle `s` (WSAENOTSOCK first, as Winsock checks
        the socket before anything else), then, unless `network` is False,
        the network (WSAENETDOWN)."""
        sock = self._context_of(s, funcname)
        if type(sock) is not SimSocket or sock.owner is not self:
            raise WinsockError(WSAENOTSOCK, funcname)
        if network and self.network.down:
            raise WinsockError(WSAENETDOWN, funcname)
        return sock

    def _on_event(self, sock: SimSocket, fd: int, error: int) -> None:
        if sock.event is not None and self._process is not None:
            try:
                self._process.WSASetEvent(sock.event)
            except WinsockError:                               # the event was closed
                pass

    def _block(self, sock: SimSocket, ready: Callable[[], bool], funcname: str,
               deadline: float | None = None) -> bool:
        """Wait (lock held; the GIL and the lock are released while waiting)
        until ready(); alertable: APCs queued to this thread run meanwhile.
        False if the deadline passed first; WSAEINTR if the socket was closed
        or the provider cleaned up under us."""
        process = self.process
        me = threading.get_ident()
        cond = sock.cond
        network = self.network

        def wake() -> None:
            with network.lock:
                cond.notify_all()

        process.waits.add_waker(me, wake)
        sock.watchers += 1
        try:
            while not ready():
                if sock.interrupted:
                    raise WinsockError(WSAEINTR, funcname)
                if process.threads.pending(me):
                    process.threads.run_apcs(me)
                    continue
                if deadline is None:
                    cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    cond.wait(remaining)
            return True
        finally:
            sock.watchers -= 1
            process.waits.remove_waker(me, wake)

    def _await(self, sock: SimSocket, queue: Any, entry: Any, funcname: str) -> None:
        """A blocking call: wait until the network finishes `entry` (queued
        on `queue`); raise its error.  If the wait itself fails (WSAEINTR,
        Ctrl-C), the entry leaves the queue so nothing is delivered to it."""
        try:
            self._block(sock, lambda: entry.done, funcname)
        except BaseException:
            if entry in queue:
                queue.remove(entry)
            raise
        if entry.error:
            raise WinsockError(entry.error, funcname)

    def complete_recv(self, sock: SimSocket, entry: PendingRecv, notify: bool) -> None:
        """Network callback: a pending overlapped receive finished."""
        if notify:
            self.process.complete_overlapped(entry.op, entry.error, entry.nbytes, entry.flags)
        else:
            self.process.cancel_overlapped(entry.op, entry.error, notify=False)

    def complete_send(self, sock: SimSocket, entry: PendingSend, notify: bool) -> None:
        """Network callback: a pending overlapped send finished."""
        nbytes = len(entry.data) if not entry.error else 0
        if notify:
            self.process.complete_overlapped(entry.op, entry.error, nbytes)
        else:
            self.process.cancel_overlapped(entry.op, entry.error, notify=False)

    def _start(self, sock: SimSocket, overlapped: Overlapped, routine: Any, thread_id: Any,
               buffers: Any, funcname: str) -> Any:
        # The socket keeps its handle-table entry: no second lookup per operation.
        return self.process.start_on(sock.entry, sock.handle, overlapped, routine, thread_id,
                                     buffers, self, funcname)

    def _adopt(self, sock: SimSocket, handle: int) -> None:
        """Give `sock` its handle (lock held)."""
        sock.handle = handle
        sock.entry = self.process.find_socket(handle)
        self._sockets[handle] = sock

    # -- socket, bind, listen, connect, accept -------------------------------------------
    def WSPSocket(self, af: int, type: int, protocol: int, protocol_info: Any = None,
                  g: int = 0, flags: int = 0) -> int:
        """A new AF_INET stream (TCP) or datagram (UDP) socket."""
        funcname = "WSPSocket"
        self._require_started(funcname)
        for value, name in ((af, "af"), (type, "type"), (protocol, "protocol"), (g, "g"),
                            (flags, "flags")):
            int_arg(value, name)
        self.network.check_up(funcname)
        if af != AF_INET:
            raise WinsockError(WSAEAFNOSUPPORT, funcname)
        if type not in (SOCK_STREAM, SOCK_DGRAM):
            raise WinsockError(WSAESOCKTNOSUPPORT, funcname)
        native = IPPROTO_TCP if type == SOCK_STREAM else IPPROTO_UDP
        if protocol not in (0, native):
            code = WSAEPROTOTYPE if protocol in (IPPROTO_TCP, IPPROTO_UDP) else WSAEPROTONOSUPPORT
            raise WinsockError(code, funcname)
        if g != 0:
            raise WinsockError(WSAEINVAL, funcname)          # socket groups are not supported
        sock = SimSocket(self.network, type, self)
        sock.on_event = self._on_event
        # The handle names this provider's own catalog entry (not a chain a
        # layer above passed down as protocol_info): ws2_32 routes by it.
        s = self.upcalls.WPUCreateSocketHandle(self.catalog_entry_id, sock)
        with self.network.lock:
            self._adopt(sock, s)
        return s

    def WSPBind(self, s: int, addr: tuple[str, int]) -> None:
        funcname = "WSPBind"
        sock = self._sock(s, funcname)
        addr = check_address(addr, funcname)
        with self.network.lock:
            if sock.bound or sock.state != "new":
                raise WinsockError(WSAEINVAL, funcname)
            self.network.bind(sock, addr, funcname)

    def WSPListen(self, s: int, backlog: int) -> None:
        funcname = "WSPListen"
        sock = self._sock(s, funcname)
        int_arg(backlog, "backlog")
        with self.network.lock:
            if sock.kind != SOCK_STREAM:
                raise WinsockError(WSAEOPNOTSUPP, funcname)
            if sock.state == "connected":
                raise WinsockError(WSAEISCONN, funcname)
            if not sock.bound:
                raise WinsockError(WSAEINVAL, funcname)
            sock.backlog = max(1, min(backlog, _MAX_BACKLOG, SOMAXCONN))
            sock.state = "listening"

    def WSPConnect(self, s: int, addr: tuple[str, int]) -> None:
        """Connect.  A stream connect completes when the listener queues the
        connection (before WSPAccept).  On a non-blocking socket it reports
        WSAEWOULDBLOCK as Winsock does; the connection is nevertheless already
        made, and FD_CONNECT / select's writability say so."""
        funcname = "WSPConnect"
        sock = self._sock(s, funcname)
        addr = check_address(addr, funcname)
        with self.network.lock:
            if sock.kind == SOCK_DGRAM:
                if addr == (ANY_HOST, 0):
                    sock.remote = None                 # dissolve the association
                    return
                if not sock.bound:
                    self.network.bind(sock, ("127.0.0.1", 0), funcname)
                sock.remote = addr
                return
            if sock.state == "listening":
                raise WinsockError(WSAEINVAL, funcname)
            if sock.state == "connected" or sock.reset_error:
                raise WinsockError(WSAEISCONN, funcname)
            self.network.connect(sock, addr, funcname)
            if sock.nonblocking:
                raise WinsockError(WSAEWOULDBLOCK, funcname)

    def WSPAccept(self, s: int, condition: Callable[..., int] | None = None,
                  callback_data: Any = 0) -> tuple[int, tuple[str, int]]:
        """Accept a queued connection: ``(new_socket, caller_address)``.

        ``condition(caller_addr, callee_addr, callback_data)`` may return
        CF_ACCEPT, CF_REJECT (the connection is reset; WSAECONNREFUSED) or
        CF_DEFER (it stays queued; WSATRY_AGAIN).  The accepted socket
        inherits the listener's options and WSPEventSelect registration."""
        funcname = "WSPAccept"
        sock = self._sock(s, funcname)
        if condition is not None and not callable(condition):
            raise TypeError("condition must be callable or None")
        lock = self.network.lock
        with lock:
            if sock.state != "listening":
                raise WinsockError(WSAEINVAL, funcname)
            while not sock.accept_queue:
                if sock.nonblocking:
                    sock.rearm(FD_ACCEPT)
                    raise WinsockError(WSAEWOULDBLOCK, funcname)
                self._block(sock, lambda: bool(sock.accept_queue), funcname)
            server = sock.accept_queue[0]
        if condition is not None:
            verdict = self._callback(condition, server.remote, server.local, callback_data)
            if verdict == CF_DEFER:
                raise WinsockError(WSATRY_AGAIN, funcname)
            if verdict == CF_REJECT:
                with lock:
                    if server in sock.accept_queue:
                        sock.accept_queue.remove(server)
                    self.network.reset(server.connection, WSAECONNRESET)
                raise WinsockError(WSAECONNREFUSED, funcname)
            if verdict != CF_ACCEPT:
                raise WinsockError(WSAEINVAL, funcname)
        with lock:
            if server not in sock.accept_queue:        # reset, or another thread took it
                raise WinsockError(WSAECONNRESET, funcname)
            sock.accept_queue.remove(server)
            server.owner = self
            server.on_event = self._on_event
            server.nonblocking = sock.nonblocking
            server.event, server.event_mask = sock.event, sock.event_mask
            server.armed = FD_ALL_EVENTS
            new = self.upcalls.WPUCreateSocketHandle(self.catalog_entry_id, server)
            self._adopt(server, new)
            sock.rearm(FD_ACCEPT)
            if sock.accept_queue:
                sock.post(FD_ACCEPT)
            if server.readable():
                server.post(FD_READ)
            if server.eof:
                server.post(FD_CLOSE, 0)
            if server.writable():
                server.post(FD_WRITE)
            return (new, server.remote)

    def _callback(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run a callback of the application; while it runs, WSPCloseSocket
        on this thread fails with WSAEINPROGRESS (seed: LPWSPCloseSocket)."""
        depth = getattr(self._callbacks, "depth", 0)
        self._callbacks.depth = depth + 1
        try:
            return func(*args)
        finally:
            self._callbacks.depth = depth

    # -- data ----------------------------------------------------------------------------
    def WSPSend(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: Any = None) -> tuple[int, int]:
        """Send the concatenated `buffers`.  ``(0, nbytes)`` when done at once,
        ``(WSA_IO_PENDING, 0)`` for an overlapped send waiting for room.  A
        non-blocking send takes what fits (WSAEWOULDBLOCK if nothing does);
        a blocking one waits until everything is buffered."""
        funcname = "WSPSend"
        sock = self._sock(s, funcname)
        data = gather(buffers, funcname)
        int_arg(flags, "flags")
        with self.network.lock:
            if sock.kind == SOCK_DGRAM:
                if sock.remote is None:
                    raise WinsockError(WSAENOTCONN, funcname)
                return self._send_datagram(s, sock, data, sock.remote, overlapped,
                                           completion_routine, thread_id, funcname)
            return self._send_stream(s, sock, data, overlapped, completion_routine, thread_id,
                                     funcname)

    def _send_stream(self, s: int, sock: SimSocket, data: bytes, overlapped: Any, routine: Any,
                     thread_id: Any, funcname: str) -> tuple[int, int]:
        if sock.reset_error:
            raise WinsockError(sock.reset_error, funcname)
        if sock.shut_send:
            raise WinsockError(WSAESHUTDOWN, funcname)
        if sock.state != "connected":
            raise WinsockError(WSAENOTCONN, funcname)
        if overlapped is not None:
            op = self._start(sock, overlapped, routine, thread_id, data, funcname)
            entry = PendingSend(memoryview(data), op)
            sock.pending_sends.append(entry)
            sock.pump()               # on an idle connection: straight into the peer
            return (0, len(data)) if entry.done and not entry.error else (WSA_IO_PENDING, 0)
        entry = PendingSend(memoryview(data), None)
        sock.pending_sends.append(entry)
        sock.pump()
        if entry.done:
            if entry.error:
                raise WinsockError(entry.error, funcname)
            return (0, len(data))
        if sock.nonblocking:
            sock.pending_sends.remove(entry)           # keep what was taken, no more
            sock.rearm(FD_WRITE)
            if entry.offset == 0:
                raise WinsockError(WSAEWOULDBLOCK, funcname)
            return (0, entry.offset)
        self._await(sock, sock.pending_sends, entry, funcname)
        return (0, len(data))

    def WSPSendTo(self, s: int, buffers: Sequence[Any], flags: int, to: tuple[str, int],
                  overlapped: Overlapped | None = None, completion_routine: Any = None,
                  thread_id: Any = None) -> tuple[int, int]:
        """Send a datagram to `to` (on a connected stream socket `to` is
        ignored and this is WSPSend)."""
        funcname = "WSPSendTo"
        sock = self._sock(s, funcname)
        data = gather(buffers, funcname)
        int_arg(flags, "flags")
        with self.network.lock:
            if sock.kind == SOCK_STREAM:
                return self._send_stream(s, sock, data, overlapped, completion_routine,
                                         thread_id, funcname)
            addr = check_address(to, funcname)
            return self._send_datagram(s, sock, data, addr, overlapped, completion_routine,
                                       thread_id, funcname)

    def _send_datagram(self, s: int, sock: SimSocket, data: bytes, to: tuple[str, int],
                       overlapped: Any, routine: Any, thread_id: Any,
                       funcname: str) -> tuple[int, int]:
        if sock.shut_send:
            raise WinsockError(WSAESHUTDOWN, funcname)
        if to[0] == ANY_HOST or to[1] == 0:
            raise WinsockError(WSAEADDRNOTAVAIL, funcname)
        if len(data) > MAX_DATAGRAM:                  # fails before it starts: nothing delivered
            raise WinsockError(WSAEMSGSIZE, funcname)
        op = None
        if overlapped is not None:
            op = self._start(sock, overlapped, routine, thread_id, data, funcname)
        try:
            self.network.send_datagram(sock, data, to, funcname)
        except WinsockError as exc:
            if op is None:
                raise
            self.process.complete_overlapped(op, exc.winerror, 0)
            return (0, 0)
        if op is not None:
            self.process.complete_overlapped(op, 0, len(data))
        return (0, len(data))

    def WSPRecv(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: Any = None) -> tuple[int, int, int]:
        """Receive into `buffers` (filled in order): ``(0, nbytes, flags)``
        when done at once (0 bytes: the peer closed gracefully),
        ``(WSA_IO_PENDING, 0, 0)`` for a pending overlapped receive."""
        funcname = "WSPRecv"
        sock = self._sock(s, funcname)
        views = scatter(buffers, funcname)
        peek = self._recv_flags(flags, funcname)
        with self.network.lock:
            if sock.kind == SOCK_DGRAM:
                rc, n, out_flags, _ = self._recv_datagram(s, sock, views, peek, overlapped,
                                                          completion_routine, thread_id, funcname)
                return (rc, n, out_flags)
            return self._recv_stream(s, sock, views, peek, overlapped, completion_routine,
                                     thread_id, funcname)

    @staticmethod
    def _recv_flags(flags: object, funcname: str) -> bool:
        int_arg(flags, "flags")
        if flags & ~MSG_PEEK:
            raise WinsockError(WSAEOPNOTSUPP, funcname)
        return bool(flags & MSG_PEEK)

    def _recv_stream(self, s: int, sock: SimSocket, views: list[memoryview], peek: bool,
                     overlapped: Any, routine: Any, thread_id: Any,
                     funcname: str) -> tuple[int, int, int]:
        if sock.reset_error:
            raise WinsockError(sock.reset_error, funcname)
        if sock.state != "connected":
            raise WinsockError(WSAENOTCONN, funcname)
        if sock.shut_recv:
            raise WinsockError(WSAESHUTDOWN, funcname)
        op = None
        if overlapped is not None:
            op = self._start(sock, overlapped, routine, thread_id, views, funcname)
        entry = PendingRecv(views, op, peek)
        if not sock.pending_recvs and (sock.recv_buf or sock.eof):
            n = sock.consume(entry) if sock.recv_buf else 0
            sock.rearm(FD_READ)
            if sock.recv_buf:
                sock.post(FD_READ)
            self.network.finish_recv(sock, entry, n, 0)
            return (0, n, 0)
        self._queue_recv(sock, entry, funcname)
        if op is not None and not (entry.done and not entry.error):
            return (WSA_IO_PENDING, 0, 0)
        return (0, entry.nbytes, 0)

    def _queue_recv(self, sock: SimSocket, entry: PendingRecv, funcname: str) -> None:
        """Nothing to receive yet (lock held).  Without an overlapped, a
        non-blocking socket fails with WSAEWOULDBLOCK; otherwise `entry` joins
        the receive queue -- bytes waiting in the peer's send buffer flow
        straight into it -- and a blocking call waits for it to finish."""
        sock.rearm(FD_READ)
        if entry.op is None and sock.nonblocking:
            raise WinsockError(WSAEWOULDBLOCK, funcname)
        sock.pending_recvs.append(entry)
        peer = sock.peer
        if peer is not None and (peer.send_buf or peer.pending_sends):
            peer.pump()
        if entry.op is None:
            self._await(sock, sock.pending_recvs, entry, funcname)

    def WSPRecvFrom(self, s: int, buffers: Sequence[Any], flags: int = 0,
                    overlapped: Overlapped | None = None, completion_routine: Any = None,
                    thread_id: Any = None) -> tuple[int, int, int, Any]:
        """Receive a datagram: ``(rc, nbytes, flags, from_addr)``.  A datagram
        larger than the buffers is truncated: WSAEMSGSIZE (overlapped: the
        completion carries WSAEMSGSIZE and MSG_PARTIAL)."""
        funcname = "WSPRecvFrom"
        sock = self._sock(s, funcname)
        views = scatter(buffers, funcname)
        peek = self._recv_flags(flags, funcname)
        with self.network.lock:
            if sock.kind == SOCK_STREAM:
                rc, n, out_flags = self._recv_stream(s, sock, views, peek, overlapped,
                                                     completion_routine, thread_id, funcname)
                return (rc, n, out_flags, sock.remote)
            return self._recv_datagram(s, sock, views, peek, overlapped, completion_routine,
                                       thread_id, funcname)

    def _recv_datagram(self, s: int, sock: SimSocket, views: list[memoryview], peek: bool,
                       overlapped: Any, routine: Any, thread_id: Any,
                       funcname: str) -> tuple[int, int, int, Any]:
        if not sock.bound:
            raise WinsockError(WSAEINVAL, funcname)
        if sock.shut_recv:
            raise WinsockError(WSAESHUTDOWN, funcname)
        op = None
        if overlapped is not None:
            op = self._start(sock, overlapped, routine, thread_id, views, funcname)
        entry = PendingRecv(views, op, peek)
        if sock.dgrams:
            data, source = sock.dgrams[0]
            if not peek:
                sock.dgrams.popleft()
                sock.dgram_bytes -= len(data)
            n = entry.fill(data)
            entry.source = source
            truncated = n < len(data)
            entry.flags = MSG_PARTIAL if truncated else 0
            sock.rearm(FD_READ)
            if sock.dgrams:
                sock.post(FD_READ)
            self.network.finish_recv(sock, entry, n, WSAEMSGSIZE if truncated else 0)
            if truncated and op is None:
                raise WinsockError(WSAEMSGSIZE, funcname)
            return (0, n, entry.flags, source)
        self._queue_recv(sock, entry, funcname)       # blocking: WSAEMSGSIZE if truncated
        if op is not None:
            return (WSA_IO_PENDING, 0, 0, None)
        return (0, entry.nbytes, 0, entry.source)

    # -- shutdown and close ---------------------------------------------------------------
    def WSPGetOverlappedResult(self, s: int, overlapped: Overlapped,
                               wait: bool) -> tuple[int, int]:
        """As ServiceProvider's, for this provider's sockets only
        (WSAENOTSOCK otherwise)."""
        self._sock(s, "WSPGetOverlappedResult", network=False)
        return super().WSPGetOverlappedResult(s, overlapped, wait)

    def WSPShutdown(self, s: int, how: int) -> None:
        """SD_SEND: FIN after the queued data; SD_RECEIVE: no more receives
        (unread or later data resets the connection, as Windows does);
        SD_BOTH: both.  On a socket whose close is waiting for linger, this
        starts the graceful close."""
        self._shutdown(s, how, "WSPShutdown")

    def _shutdown(self, s: int, how: int, funcname: str) -> None:
        sock = self._sock(s, funcname)
        int_arg(how, "how")
        if how not in (SD_RECEIVE, SD_SEND, SD_BOTH):
            raise WinsockError(WSAEINVAL, funcname)
        with self.network.lock:
            if sock.kind == SOCK_STREAM and sock.state != "connected":
                raise WinsockError(WSAENOTCONN, funcname)
            if how in (SD_SEND, SD_BOTH):
                sock.shut_send = True
                if sock.kind == SOCK_STREAM and not sock.reset_error:
                    sock.fin_queued = True
                    sock.pump()
            if how in (SD_RECEIVE, SD_BOTH):
                sock.shut_recv = True
                if sock.kind == SOCK_STREAM and sock.recv_buf:
                    self.network.reset(sock.connection, WSAECONNRESET)
            sock.wake()

    def WSPCloseSocket(self, s: int) -> None:
        """Close a socket (seed: LPWSPCloseSocket).

        * `s` is released: later use of it fails with WSAENOTSOCK;
        * pending overlapped operations fail with WSA_OPERATION_ABORTED and
          their completion action is performed; threads blocked in calls on
          `s` fail with WSAEINTR;
        * no FD_CLOSE is recorded for `s`; the peer gets FD_CLOSE;
        * SO_DONTLINGER (default): returns at once, queued data is still
          delivered, then a graceful close -- the provider keeps the
          connection alive until then;
        * SO_LINGER, l_linger 0: hard close, queued data dropped, the peer's
          receives fail with WSAECONNRESET;
        * SO_LINGER, l_linger > 0, blocking socket: waits until the data is
          delivered (graceful) or the time-out passes (then hard close);
        * SO_LINGER, l_linger > 0, non-blocking socket with undelivered data:
          WSAEWOULDBLOCK, the handle stays valid and no disconnect starts,
          until linger is set to zero, SO_DONTLINGER is enabled or
          WSPShutdown starts the close;
        * WSAEINPROGRESS from inside a callback of this provider (the
          WSPAccept condition function); WSAENETDOWN when the network is down.
        """
        funcname = "WSPCloseSocket"
        sock = self._sock(s, funcname)
        if getattr(self._callbacks, "depth", 0):
            raise WinsockError(WSAEINPROGRESS, funcname)
        network = self.network
        with network.lock:
            hard = bool(sock.linger_onoff) and sock.linger_seconds == 0
            if (sock.kind == SOCK_STREAM and sock.state == "connected" and not hard
                    and sock.linger_onoff and self._undelivered(sock)):
                if sock.nonblocking:
                    if not sock.shut_send:
                        raise WinsockError(WSAEWOULDBLOCK, funcname)
                else:
                    deadline = time.monotonic() + sock.linger_seconds
                    delivered = self._block(sock, lambda: not self._undelivered(sock), funcname,
                                            deadline)
                    hard = not delivered              # time-out: terminate before returning
            self._release(s, sock, hard=hard, notify=True)

    def _cancel_calls(self, s: int, sock: SimSocket, notify: bool) -> None:
        """Fail every call pending on `s` (lock held): overlapped operations
        with WSA_OPERATION_ABORTED (their completion action performed only
        with `notify`), blocked threads with WSAEINTR.  The socket records no
        network events from now on."""
        network = self.network
        sock.event_mask = 0                           # no FD_CLOSE (or any event) for it
        sock.event = None
        sock.interrupted = True                       # blocked accept/select/linger: WSAEINTR
        aborted = WSA_OPERATION_ABORTED
        for entry in list(sock.pending_recvs):
            sock.pending_recvs.remove(entry)
            network.finish_recv(sock, entry, 0, aborted if entry.op is not None else WSAEINTR,
                                notify)
        # Sends that have not fully left are aborted; what already reached
        # the send buffer is delivered by a graceful close.
        for entry in list(sock.pending_sends):
            sock.pending_sends.remove(entry)
            network.finish_send(sock, entry, aborted if entry.op is not None else WSAEINTR,
                                notify)
        for op in self.process.operations(socket=s):  # anything else still pending on s
            self.process.cancel_overlapped(op, aborted, notify)
        sock.wake()

    @staticmethod
    def _undelivered(sock: SimSocket) -> bool:
        return not sock.reset_error and bool(sock.send_buf or sock.pending_sends)

    def _release(self, s: int, sock: SimSocket, hard: bool, notify: bool) -> None:
        """Free handle `s` and take its socket out of service (lock held).

        `notify`: pending overlapped operations complete with
        WSA_OPERATION_ABORTED through their completion action (close) or
        silently (cleanup)."""
        network = self.network
        sock.handle_closed = True
        self._sockets.pop(s, None)
        try:
            self.upcalls.WPUCloseSocketHandle(s)
        except WinsockError as exc:
            # Anyone holding proc.upcalls can close a provider's handle
            # behind its back; the socket itself must still be released, or
            # a cleanup would stop half-way and leave the rest bound.
            if exc.winerror != WSAENOTSOCK:
                raise
        self._cancel_calls(s, sock, notify)
        if sock.state == "listening":
            for queued in list(sock.accept_queue):
                network.reset(queued.connection, WSAECONNRESET)
            sock.accept_queue.clear()
        elif sock.kind == SOCK_STREAM and sock.state == "connected":
            # Seed: "queued data [is] discarded".  Closing with received data
            # still unread makes TCP answer with a reset (RFC 1122 4.2.2.13),
            # as Windows does, instead of a graceful close.
            if hard or sock.reset_error or sock.recv_buf:
                network.reset(sock.connection, WSAECONNRESET)
            else:
                sock.shut_send = True
                sock.fin_queued = True
                sock.pump()
                if not sock.fin_sent:
                    network.linger(sock)             # still delivering: keep it alive
                elif sock.peer is not None and sock.peer.handle_closed:
                    network.forget_if_done(sock)
        network.unbind(sock)
        if sock.state != "connected":             # a connected one may still be delivering
            sock.state = "closed"

    # -- cleanup and termination ------------------------------------------------------------
    def WSPCleanup(self) -> None:
        """End one WSPStartup (seed: LPWSPCleanup; see ``on_cleanup`` for
        what the final one does).  WSAENETDOWN, with nothing changed, while
        the network is down."""
        if self.started and self.network.down:
            raise WinsockError(WSAENETDOWN, "WSPCleanup")
        super().WSPCleanup()

    def on_cleanup(self) -> None:
        """The final WSPCleanup (seed: LPWSPCleanup).  The engine has already
        failed this provider's pending overlapped operations with
        WSA_OPERATION_ABORTED without notification; here every socket still
        open is reset (its peer sees WSAECONNRESET) and deallocated as if
        closed.  Sockets closed earlier that are still delivering their data
        are not touched: they finish sending."""
        self._reset_all()

    def on_terminated(self, process: Process) -> None:
        """The process died without WSPCleanup: the same release -- peers see
        a reset, blocked threads are released, addresses are free -- without
        any notification to the dead process."""
        try:
            self._reset_all()
        finally:
            super().on_terminated(process)

    def _reset_all(self) -> None:
        """Reset and release every open socket (cleanup, terminate).  Runs
        to the end whatever one socket does: the first unexpected error is
        raised after all of them have been released."""
        first_error: BaseException | None = None
        with self.network.lock:
            sockets = list(self._sockets.items())
            # Cancel everything first, then reset: one socket's reset must
            # not fail another's canceled calls with WSAECONNRESET.
            for step in (lambda s, sock: self._cancel_calls(s, sock, notify=False),
                         lambda s, sock: self._release(s, sock, hard=True, notify=False)):
                for s, sock in sockets:
                    try:
                        step(s, sock)
                    except Exception as exc:  # noqa: BLE001 -- re-raised below
                        first_error = first_error or exc
        if first_error is not None:
            raise first_error

    # -- options, ioctl, names --------------------------------------------------------------
    def WSPSetSockOpt(self, s: int, level: int, optname: int, value: Any) -> None:
        funcname = "WSPSetSockOpt"
        sock = self._sock(s, funcname)
        int_arg(level, "level")
        int_arg(optname, "optname")
        if level != SOL_SOCKET:
            raise WinsockError(WSAEINVAL, funcname)
        with self.network.lock:
            if optname == SO_LINGER:
                if sock.kind != SOCK_STREAM:
                    raise WinsockError(WSAENOPROTOOPT, funcname)
                if not isinstance(value, Linger):
                    raise TypeError("SO_LINGER takes a Linger(l_onoff, l_linger)")
                sock.linger_onoff, sock.linger_seconds = value.l_onoff, value.l_linger
            elif optname == SO_DONTLINGER:
                if sock.kind != SOCK_STREAM:
                    raise WinsockError(WSAENOPROTOOPT, funcname)
                sock.linger_onoff = 0 if self._flag(value) else 1
            elif optname in (SO_SNDBUF, SO_RCVBUF):
                size = int_arg(value, "value")
                if size < 0:
                    raise WinsockError(WSAEINVAL, funcname)
                if optname == SO_SNDBUF:
                    sock.sndbuf = size
                    sock.pump()
                else:
                    sock.rcvbuf = size
                    if sock.peer is not None:
                        sock.peer.pump()
            elif optname == SO_REUSEADDR:
                sock.reuseaddr = self._flag(value)
            else:                                     # SO_TYPE, SO_ERROR are read-only
                raise WinsockError(WSAENOPROTOOPT, funcname)

    @staticmethod
    def _flag(value: Any) -> bool:
        if not isinstance(value, int):
            raise TypeError(f"option value must be a bool or int, not {type(value).__name__}")
        return bool(value)

    def WSPGetSockOpt(self, s: int, level: int, optname: int) -> Any:
        funcname = "WSPGetSockOpt"
        sock = self._sock(s, funcname)
        int_arg(level, "level")
        int_arg(optname, "optname")
        if level != SOL_SOCKET:
            raise WinsockError(WSAEINVAL, funcname)
        with self.network.lock:
            if optname in (SO_LINGER, SO_DONTLINGER) and sock.kind != SOCK_STREAM:
                raise WinsockError(WSAENOPROTOOPT, funcname)
            if optname == SO_LINGER:
                return Linger(sock.linger_onoff, sock.linger_seconds)
            if optname == SO_DONTLINGER:
                return not sock.linger_onoff
            if optname == SO_SNDBUF:
                return sock.sndbuf
            if optname == SO_RCVBUF:
                return sock.rcvbuf
            if optname == SO_TYPE:
                return sock.kind
            if optname == SO_ERROR:
                error, sock.so_error = sock.so_error, 0
                return error
            if optname == SO_REUSEADDR:
                return sock.reuseaddr
            if optname == SO_ACCEPTCONN:
                return sock.state == "listening"
            raise WinsockError(WSAENOPROTOOPT, funcname)

    def WSPIoctl(self, s: int, code: int, value: Any = None, overlapped: Any = None,
                 completion_routine: Any = None, thread_id: Any = None) -> Any:
        """FIONBIO (value 0/1: blocking off/on... i.e. non-blocking on/off)
        and FIONREAD (bytes readable: the stream's buffer, or the size of the
        first datagram).  Other codes: WSAEINVAL."""
        funcname = "WSPIoctl"
        sock = self._sock(s, funcname)
        int_arg(code, "code")
        with self.network.lock:
            if code == FIONBIO:
                on = self._flag(value)
                if not on and sock.event_mask:
                    raise WinsockError(WSAEINVAL, funcname)   # WSPEventSelect forces it
                sock.nonblocking = on
                result: Any = None
            elif code == FIONREAD:
                if sock.kind == SOCK_DGRAM:
                    result = len(sock.dgrams[0][0]) if sock.dgrams else 0
                else:
                    result = len(sock.recv_buf)
            else:
                raise WinsockError(WSAEINVAL, funcname)
            if overlapped is not None:                # completes at once, still delivered
                op = self._start(sock, overlapped, completion_routine, thread_id, None, funcname)
                self.process.complete_overlapped(op, 0, 0)
            return result

    def WSPGetSockName(self, s: int) -> tuple[str, int]:
        funcname = "WSPGetSockName"
        sock = self._sock(s, funcname)
        with self.network.lock:
            if sock.local is None:
                raise WinsockError(WSAEINVAL, funcname)
            return sock.local

    def WSPGetPeerName(self, s: int) -> tuple[str, int]:
        funcname = "WSPGetPeerName"
        sock = self._sock(s, funcname)
        with self.network.lock:
            if sock.remote is None or (sock.kind == SOCK_STREAM and sock.state != "connected"):
                raise WinsockError(WSAENOTCONN, funcname)
            return sock.remote

    # -- event select and select ---------------------------------------------------------------
    def WSPEventSelect(self, s: int, event: int | None, network_events: int) -> None:
        """Record `network_events` (FD_* bits) for `s` and signal `event` when
        one occurs; makes the socket non-blocking.  A mask of 0 cancels.
        Conditions already true are recorded at once."""
        funcname = "WSPEventSelect"
        sock = self._sock(s, funcname)
        int_arg(network_events, "network_events")
        if network_events and event is None:
            raise WinsockError(WSAEINVAL, funcname)
        if event is not None:
            self.process.events.entry(event, funcname)   # WSA_INVALID_HANDLE for a bad event
        with self.network.lock:
            sock.event = event if network_events else None
            sock.event_mask = network_events & FD_ALL_EVENTS
            sock.net_events.clear()
            sock.armed = FD_ALL_EVENTS
            sock.nonblocking = True
            if sock.state == "listening":
                if sock.accept_queue:
                    sock.post(FD_ACCEPT)
            else:
                if sock.readable() and not sock.eof and not sock.reset_error:
                    sock.post(FD_READ)
                if sock.writable():
                    sock.post(FD_WRITE)
                if sock.eof:
                    if sock.recv_buf:
                        sock.post(FD_READ)
                    sock.post(FD_CLOSE, 0)

    def WSPEnumNetworkEvents(self, s: int, event: int | None = None) -> dict[int, int]:
        """The network events recorded since the last call, as
        ``{FD_flag: error_code}``; clears the record and resets `event`."""
        funcname = "WSPEnumNetworkEvents"
        sock = self._sock(s, funcname)
        if event is not None:
            self.process.WSAResetEvent(event, funcname)
        with self.network.lock:
            events = dict(sock.net_events)
            sock.net_events.clear()
            return events

    def WSPSelect(self, read: Sequence[int], write: Sequence[int], except_: Sequence[int],
                  timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        """``(readable, writable, exceptional)`` subsets of the three
        sequences; waits up to `timeout` seconds (None: until one is ready).
        WSAEINVAL if all three are empty; WSAENOTSOCK for a non-socket."""
        funcname = "WSPSelect"
        try:
            sets = [list(read or ()), list(write or ()), list(except_ or ())]
        except TypeError:
            raise TypeError("WSPSelect takes sequences of socket handles") from None
        if not any(sets):
            raise WinsockError(WSAEINVAL, funcname)
        socks = {s: self._sock(s, funcname) for group in sets for s in group}
        deadline = deadline_after(seconds_timeout(timeout, funcname))
        network = self.network
        with network.lock:
            while True:
                ready = ([s for s in sets[0] if socks[s].readable()],
                         [s for s in sets[1] if socks[s].writable()],
                         [])
                if any(ready):
                    return ready
                if any(sock.interrupted for sock in socks.values()):
                    raise WinsockError(WSAEINTR, funcname)
                if deadline is not None and time.monotonic() >= deadline:
                    return ([], [], [])
                waiter = threading.Condition(network.lock)
                for sock in socks.values():
                    sock.cond = _Fanout(sock.cond, waiter)
                    sock.watchers += 1
                try:
                    waiter.wait(wait_time(deadline))   # a slice: the loop re-checks
                finally:
                    for sock in socks.values():
                        sock.watchers -= 1
                        if isinstance(sock.cond, _Fanout):
                            sock.cond = sock.cond.unwrap(waiter)

    # -- the rest of the table -----------------------------------------------------------------
    def WSPAddressToString(self, addr: tuple[str, int], protocol_info: Any = None) -> str:
        """``"a.b.c.d:port"`` (just the host when the port is 0)."""
        host, port = check_address(addr, "WSPAddressToString")
        return f"{host}:{port}" if port else host

    def WSPStringToAddress(self, address: str, af: int = AF_INET,
                           protocol_info: Any = None) -> tuple[str, int]:
        """Parse ``"a.b.c.d[:port]"``; WSAEINVAL when it is not one."""
        funcname = "WSPStringToAddress"
        if not isinstance(address, str):
            raise TypeError("address must be a str")
        if int_arg(af, "af") != AF_INET:
            raise WinsockError(WSAEAFNOSUPPORT, funcname)
        host, _, port = address.partition(":")
        try:
            return check_address((host, int(port) if port else 0), funcname)
        except (ValueError, WinsockError):
            raise WinsockError(WSAEINVAL, funcname) from None

    def WSPSendDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """Start a graceful close of the send side (shutdown SD_SEND);
        disconnect data is not supported by TCP (WSAEOPNOTSUPP)."""
        self._sock(s, "WSPSendDisconnect")
        if disconnect_data:
            raise WinsockError(WSAEOPNOTSUPP, "WSPSendDisconnect")
        self._shutdown(s, SD_SEND, "WSPSendDisconnect")

    def WSPRecvDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """Stop receiving (shutdown SD_RECEIVE); TCP carries no disconnect data."""
        self._sock(s, "WSPRecvDisconnect")
        if disconnect_data:
            raise WinsockError(WSAEOPNOTSUPP, "WSPRecvDisconnect")
        self._shutdown(s, SD_RECEIVE, "WSPRecvDisconnect")

    def reset_connection(self, s: int, funcname: str = "reset_connection") -> None:
        """Reset the connection of stream socket `s` from the network, as a
        middlebox's RST would: both ends fail with WSAECONNRESET and FD_CLOSE
        carries it (the fault layer's "reset").  WSAENOTSOCK for a handle
        that is not this provider's; a socket without a connection is left
        alone."""
        sock = self._sock(s, funcname, network=False)
        network = self.network
        with network.lock:
            network.reset(sock.connection, WSAECONNRESET, close_error=WSAECONNRESET)

    def sockets(self) -> list[int]:
        """The handles of this provider's open sockets."""
        with self.network.lock:
            return list(self._sockets)


class _Fanout:
    """Stands in for a socket's condition while WSPSelect waits on it: a
    wake of the socket also wakes the selecting thread."""

    __slots__ = ("inner", "extra")

    def __init__(self, inner: Any, extra: threading.Condition) -> None:
        self.inner = inner
        self.extra = extra

    def notify_all(self) -> None:
        self.inner.notify_all()
        self.extra.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        return self.inner.wait(timeout)

    def unwrap(self, extra: threading.Condition) -> Any:
        if self.extra is extra:
            return self.inner
        self.inner = self.inner.unwrap(extra) if isinstance(self.inner, _Fanout) else self.inner
        return self
