"""Closing sockets and cleaning up: WSPShutdown, WSPCloseSocket (with linger)
and WSPCleanup, following the seed pages LPWSPCloseSocket and LPWSPCleanup
line by line, and what a terminated process leaves behind.
"""
from __future__ import annotations

import time

from ..constants import (SD_BOTH, SD_RECEIVE, SD_SEND, SOCK_STREAM)
from ..errors import (WSA_OPERATION_ABORTED, WSAECONNRESET, WSAENETDOWN, WSAEINPROGRESS, WSAEINTR, WSAEINVAL, WSAENOTCONN, WSAENOTSOCK, WSAEWOULDBLOCK, WinsockError)
from ..spi.process import Process
from ..spi.checks import int_arg
from .socket import SimSocket

__all__ = ["Closing"]


class Closing:
    """The provider's close, shutdown and cleanup entries (a part of :class:`wsp.sim.Provider`)."""

    # -- shutdown and close ---------------------------------------------------------------
    def WSPShutdown(self, s: int, how: int) -> None:
        """SD_SEND: FIN after the queued data; SD_RECEIVE: no more receives
        (unread or later data resets the connection, as Windows does);
        SD_BOTH: both.  On a socket whose close is waiting for linger, this
        starts the graceful close."""
        self.shutdown_socket(s, how, "WSPShutdown")

    def shutdown_socket(self, s: int, how: int, funcname: str) -> None:
        """Shut down the send and/or receive side of `s` (`how`: SD_RECEIVE, SD_SEND
        or SD_BOTH); WSPShutdown and WSPSend/RecvDisconnect share it."""
        sock = self.sim_socket(s, funcname)
        int_arg(how, "how")
        if how not in (SD_RECEIVE, SD_SEND, SD_BOTH):
            raise WinsockError(WSAEINVAL, funcname)
        with self.network.lock:
            if sock.kind == SOCK_STREAM and sock.state != "connected":
                raise WinsockError(WSAENOTCONN, funcname)
            if how in (SD_SEND, SD_BOTH):
                sock.shut_send = True
                sock.shutdown_send = True
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
        sock = self.sim_socket(s, funcname)
        if self.in_callback():
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
                    clock = self.clock      # on a clocked network, simulated seconds
                    deadline = (time.monotonic() + sock.linger_seconds if clock is None
                                else clock.deadline(sock.linger_seconds))
                    delivered = self.block_until(sock, lambda: not self._undelivered(sock), funcname,
                                            deadline)
                    hard = not delivered              # time-out: terminate before returning
            self._release(s, sock, hard=hard, notify=True)

    def _cancel_calls(self, s: int, sock: SimSocket, notify: bool) -> None:
        """Fail every call pending on `s` (lock held): overlapped operations
        with WSA_OPERATION_ABORTED (their completion action performed only
        with `notify`), blocked threads with WSAEINTR.  The socket records no
        network events from now on."""
        sock.event_mask = 0                           # no FD_CLOSE (or any event) for it
        sock.event = None
        sock.interrupted = True                       # blocked accept/select/linger: WSAEINTR
        aborted = WSA_OPERATION_ABORTED
        for entry in list(sock.pending_recvs):
            sock.pending_recvs.remove(entry)
            sock.finish_recv(entry, 0, aborted if entry.op is not None else WSAEINTR, notify)
        # Sends that have not fully left are aborted; what already reached
        # the send buffer is delivered by a graceful close.
        for entry in list(sock.pending_sends):
            sock.pending_sends.remove(entry)
            sock.finish_send(entry, aborted if entry.op is not None else WSAEINTR, notify)
        for op in self.process.operations(socket=s):  # anything else still pending on s
            self.process.cancel_overlapped(op, aborted, notify)
        sock.wake()

    @staticmethod
    def _undelivered(sock: SimSocket) -> bool:
        """Whether data `sock` sent has not reached its peer yet (with a clock
        that includes the bytes still crossing the link)."""
        if sock.reset_error:
            return False
        timing = sock.timing
        return bool(sock.send_buf or sock.pending_sends
                    or (timing is not None and timing.in_flight))

    def _release(self, s: int, sock: SimSocket, hard: bool, notify: bool) -> None:
        """Free handle `s` and take its socket out of service (lock held).

        `notify`: pending overlapped operations complete with
        WSA_OPERATION_ABORTED through their completion action (close) or
        silently (cleanup)."""
        network = self.network
        sock.handle_closed = True
        self.open_sockets.pop(s, None)
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
                network.reset(queued.connection, WSAECONNRESET, origin=queued)
            sock.accept_queue.clear()
        elif sock.kind == SOCK_STREAM and sock.state == "connected":
            # Seed: "queued data [is] discarded".  Closing with received data
            # still unread makes TCP answer with a reset (RFC 1122 4.2.2.13),
            # as Windows does, instead of a graceful close.
            if hard or sock.reset_error or sock.recv_buf:
                network.reset(sock.connection, WSAECONNRESET, origin=sock)
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
            sockets = list(self.open_sockets.items())
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
