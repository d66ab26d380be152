"""WspStreamTransport: the wsp loop's own stream transport (``docs/guide/asyncio.rst``).

asyncio's proactor transports pay for a future, a done-callback and a
``call_soon`` on every read and every write.  This transport skips all three,
as uvloop's do:

* reads: one overlapped ``WSARecv`` stays posted, into a buffer reused for
  every read (or, for an ``asyncio.BufferedProtocol``, into the protocol's
  own ``get_buffer()``).  Its completion packet is handed straight to the
  transport by the proactor (the overlapped's ``object`` names the
  transport's callback) and delivered to the protocol by the loop's
  ``_process_events`` right after the wait -- no future, no callback handle;
* writes: while nothing is queued, ``write()`` sends at once with a
  non-blocking, non-overlapped ``WSASend`` (the socket is put in
  non-blocking mode with FIONBIO), which for the usual small write takes
  everything and posts no packet.  Only what the provider would not take
  (its send buffer, SO_SNDBUF, is full) is queued and goes out with one
  overlapped ``WSASend`` at a time; write flow control (``pause_writing`` /
  ``resume_writing`` against the high and low water marks) counts those
  queued bytes.

Every overlapped operation still posts its completion packet
(``docs/guide/spi-model.rst, "Overlapped operations"``), so the transport restarts a receive or a
send only once the previous one's packet has come in, and an Overlapped is reused per direction.
"""
from __future__ import annotations

import asyncio
import logging
import warnings
from asyncio import transports
from typing import Any

from ..constants import FIONBIO, SD_SEND
from ..errors import WSA_OPERATION_ABORTED, WSAECONNRESET, WSAEWOULDBLOCK, \
    WinsockError
from ..spi.structs import Overlapped

__all__ = ["WspStreamTransport", "RECV_SIZE"]

#: asyncio's own logger: what asyncio's transports log, this one logs there too.
logger = logging.getLogger("asyncio")

#: The size of the buffer a plain Protocol's reads receive into.
RECV_SIZE = 65536

#: The default write-buffer high water mark, as asyncio's (low: a quarter of it).
HIGH_WATER = 64 * 1024

#: Writes after the connection is lost are counted; from this many on each is
#: logged (asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES).
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5

#: Receive and send failures asyncio on Windows reports as a reset
#: (ConnectionResetError: ERROR_NETNAME_DELETED and ERROR_OPERATION_ABORTED,
#: whose Winsock codes these are), ended quietly.  WSAECONNABORTED is not
#: among them: there it is a ConnectionAbortedError, a fatal read error.
_RESET_CODES = (WSAECONNRESET, WSA_OPERATION_ABORTED)


def _stream_error(code: int) -> OSError:
    """The exception a failed receive or send of a stream reports."""
    if code in _RESET_CODES:
        return ConnectionResetError(code, WinsockError(code).strerror)
    return WinsockError(code)


# asyncio.Transport, through asyncio's flow-control base: loop.sendfile's
# fallback accepts only transports of that base (it reads _protocol_paused).
# The flow control itself is this class's own (the methods below override
# the base's); it keeps its state in the base's attribute names.
class WspStreamTransport(transports._FlowControlMixin):
    """A stream transport over the connected WspSocket `sock` of `loop` (a
    WspEventLoop), for `protocol`.  Made by the loop
    (``_make_socket_transport``): `waiter` gets its result once
    ``connection_made`` has run, `server` (an asyncio Server) counts the
    transport among its connections, `extra` seeds ``get_extra_info``."""

    # asyncio's start_tls() asks for this before it swaps the protocol.
    _start_tls_compatible = True
    # loop.sendfile(): no native path, asyncio's fallback (reads the file
    # and writes it, waiting on _make_empty_waiter) works on this transport.
    _sendfile_compatible = asyncio.constants._SendfileMode.FALLBACK

    # Slots: the per-message paths read a dozen attributes each.
    __slots__ = ("_buffer", "_buffered", "_closing", "_conn_lost", "_direct", "_empty_waiter",
                 "_eof_pending", "_eof_written", "_handle", "_held", "_inflight",
                 "_lost_called", "_lost_scheduled", "_paused", "_protocol",
                 "_read_done", "_recv_buf", "_recv_fast", "_recv_into", "_recv_list",
                 "_recv_ov", "_recv_posted", "_recv_target", "_recv_view", "_send_list",
                 "_send_ov", "_server", "_sock", "_try_send",
                 "_wsa_recv", "_wsa_send", "__weakref__")

    def __init__(self, loop: Any, sock: Any, protocol: asyncio.BaseProtocol,
                 waiter: asyncio.Future | None = None, extra: dict[str, Any] | None = None,
                 server: Any = None) -> None:
        super().__init__(extra, loop)
        self._sock = sock
        self._handle = handle = sock.fileno()
        proactor = loop.wsp_proactor
        process = proactor.process
        # Bound once: every read and write calls these.  They are the WSP
        # entries of the provider at the top of the socket's chain, which is
        # where Process.WSASend/WSARecv would route each call (the route is
        # fixed for the socket's life): the per-call lookup is paid once.
        provider = process.application.provider_for(handle)
        self._wsa_send = provider.WSPSend
        self._wsa_recv = provider.WSPRecv
        self._extra.setdefault("socket", sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        # The fast write path needs a send that takes what fits and returns.
        try:
            process.ioctlsocket(handle, FIONBIO, 1)
            sock.setblocking(False)
            self._try_send = True
        except WinsockError:
            self._try_send = False
        self._protocol: Any = None
        self._buffered = False
        self.set_protocol(protocol)
        self._server = server
        self._closing = False           # close()/abort()/a failure began the end
        self._lost_scheduled = False    # connection_lost is on its way (once only)
        self._lost_called = False
        self._conn_lost = 0             # writes after the end, counted (asyncio's rule)
        # -- reading
        self._recv_buf = bytearray(RECV_SIZE)
        self._recv_view = memoryview(self._recv_buf)
        self._recv_list = [self._recv_buf]
        # One Overlapped per direction, reused; its ``object`` names the
        # callback the proactor hands its packets to (set once).
        self._recv_ov = Overlapped()
        self._recv_ov.object = self._recv_done
        self._recv_posted = False
        self._recv_target: Any = None   # the buffered protocol whose buffer it fills, or None
        self._recv_into: Any = None     # that buffer
        self._paused = False
        self._held: tuple[int, int] | None = None   # a completion that came while paused
        self._read_done = False         # EOF or a read failure: no more receives
        # -- writing
        self._send_list: list[Any] = [b""]
        self._buffer = bytearray()      # what the provider did not take yet
        self._inflight: bytearray | None = None   # what the overlapped send carries
        self._send_ov = Overlapped()
        self._send_ov.object = self._send_done
        self._high_water = HIGH_WATER
        self._low_water = HIGH_WATER // 4
        self._protocol_paused = False
        self._eof_pending = False       # write_eof() asked, waits for the queue
        self._eof_written = False
        self._empty_waiter: asyncio.Future | None = None
        # The two hot paths test one flag each, kept by _refresh() at every
        # change of state: _recv_fast (a plain Protocol, reading, not
        # closing) and _direct (nothing queued, no EOF, not lost: write()
        # may send at once).
        self._recv_fast = False
        self._direct = False
        self._refresh()
        if server is not None:
            server._attach()
        loop.call_soon(self._connection_made)
        if waiter is not None:
            # As asyncio's transports: the waiter wakes once connection_made has run.
            loop.call_soon(_set_result_unless_cancelled, waiter)

    # -- what a transport tells ------------------------------------------------------
    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        if self._sock is not None:
            info.append(f"fd={self._handle}")
        if self._paused:
            info.append("read=paused")
        elif self._recv_posted:
            info.append("read=posted")
        size = self.get_write_buffer_size()
        if size:
            info.append(f"write_bufsize={size}")
        if self._eof_written:
            info.append("EOF written")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # As asyncio's: a transport dropped without close() is a leak worth a
        # ResourceWarning; its socket is closed here.
        sock = self._sock
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock = None
            sock.close()

    def _refresh(self) -> None:
        self._recv_fast = not (self._closing or self._paused or self._buffered
                               or self._read_done)
        self._direct = self._try_send and not (
            self._conn_lost or self._eof_pending or self._eof_written
            or self._inflight is not None or self._buffer)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The protocol the transport delivers to."""
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Deliver to `protocol` from now on (a BufferedProtocol receives into
        its own buffers)."""
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
        if hasattr(self, "_direct"):       # not while __init__ is still setting up
            self._refresh()

    def is_closing(self) -> bool:
        """True once close(), abort() or a failure has begun the end."""
        return self._closing

    def get_write_buffer_size(self) -> int:
        """The bytes written that the provider has not taken yet (queued
        behind a full send buffer, or carried by the overlapped send)."""
        inflight = self._inflight
        return len(self._buffer) + (len(inflight) if inflight is not None else 0)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """``(low, high)`` water marks."""
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Pause the protocol's writing above `high` queued bytes, resume at
        or below `low` (defaults as asyncio's: 64 KiB, a quarter of high)."""
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water, self._low_water = high, low
        self._maybe_pause_protocol()

    def can_write_eof(self) -> bool:
        """A stream can be half closed."""
        return True

    # -- starting and ending --------------------------------------------------------------
    def _connection_made(self) -> None:
        # connection_made first, then the first receive (unless the protocol
        # paused reading in connection_made, or the transport is already closing).
        try:
            self._protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.connection_made() call failed.")
            return
        self._post_recv()

    def close(self) -> None:
        """Stop reading; once what is queued has been sent, close the socket
        and call ``connection_lost(None)``."""
        if self._closing:
            return
        self._closing = True
        self._conn_lost += 1
        self._refresh()
        if self._inflight is None and not self._buffer:
            self._schedule_connection_lost(None)

    def abort(self) -> None:
        """Close at once, dropping what is queued; ``connection_lost(None)``."""
        self._force_close(None)

    def _schedule_connection_lost(self, exc: BaseException | None) -> None:
        if self._lost_scheduled:
            return
        self._lost_scheduled = True
        self._loop.call_soon(self._call_connection_lost, exc)

    def _force_close(self, exc: BaseException | None) -> None:
        waiter = self._empty_waiter
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)
        if self._lost_scheduled:
            return
        self._closing = True
        self._conn_lost += 1
        self._buffer.clear()
        self._refresh()
        self._schedule_connection_lost(exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._lost_called:
            return
        self._lost_called = True
        try:
            self._protocol.connection_lost(exc)
        finally:
            # Closing the socket aborts a receive (or send) still posted; its
            # packet comes in later and finds the transport closed.
            sock, self._sock = self._sock, None
            if sock is not None:
                sock.close()
            # The packets of what the close aborted find no callback and are
            # dropped; and the transport and its overlapped no longer hold
            # each other (a cycle only the collector would break).
            self._recv_ov.object = None
            self._send_ov.object = None
            server, self._server = self._server, None
            if server is not None:
                server._detach()

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        # As asyncio's transports: an OSError is the connection's end (logged
        # in debug mode), anything else also goes to the exception handler.
        try:
            if isinstance(exc, OSError):
                if self._loop.get_debug():
                    logger.debug("%r: %s", self, message, exc_info=True)
            else:
                self._loop.call_exception_handler({
                    "message": message, "exception": exc,
                    "transport": self, "protocol": self._protocol})
        finally:
            self._force_close(exc)

    # -- reading ---------------------------------------------------------------------
    def is_reading(self) -> bool:
        """True while the protocol gets what arrives."""
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        """No more data_received until resume_reading(): no receive is
        posted again, and one completing meanwhile is held."""
        if self._closing or self._paused:
            return
        self._paused = True
        self._refresh()

    def resume_reading(self) -> None:
        """Deliver what came while paused (soon, not inside this call), then
        read on."""
        if self._closing or not self._paused:
            return
        self._paused = False
        self._refresh()
        if self._held is not None:
            self._loop.call_soon(self._deliver_held)
        else:
            self._post_recv()

    def _post_recv(self) -> None:
        """Post the one receive, unless one is posted or reading stopped."""
        if self._recv_posted or self._paused or self._closing or self._read_done:
            return
        if self._buffered:
            protocol = self._protocol
            try:
                buf = protocol.get_buffer(-1)
                if not len(buf):
                    raise RuntimeError("get_buffer() returned an empty buffer")
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
                return
            self._recv_target, self._recv_into = protocol, buf
            buffers = [buf]
        else:
            self._recv_target = None
            buffers = self._recv_list
        try:
            self._wsa_recv(self._handle, buffers, 0, self._recv_ov, None, None)
        except WinsockError as exc:
            self._recv_into = None
            self._read_failed(exc.winerror)
            return
        self._recv_posted = True

    def _recv_done(self, rc: int, nbytes: int) -> None:
        """The receive's packet (from the loop's _process_events)."""
        self._recv_posted = False
        if rc or not nbytes or not self._recv_fast or self._recv_target is not None:
            self._recv_slow(rc, nbytes)
            return
        # The common case, kept short: bytes for a plain Protocol, received
        # into the transport's own buffer, copied out before the next receive.
        try:
            self._protocol.data_received(self._recv_view[:nbytes].tobytes())
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
            return
        if not self._recv_fast:
            return
        try:
            self._wsa_recv(self._handle, self._recv_list, 0, self._recv_ov, None, None)
        except WinsockError as exc:
            self._read_failed(exc.winerror)
            return
        self._recv_posted = True

    def _recv_slow(self, rc: int, nbytes: int) -> None:
        if self._closing:
            return                      # closed under it (or aborted by the close)
        if self._paused:
            self._held = (rc, nbytes)
            return
        self._deliver(rc, nbytes)

    def _deliver_held(self) -> None:
        held = self._held
        if held is None or self._paused or self._closing:
            return
        self._held = None
        self._deliver(held[0], held[1])

    def _deliver(self, rc: int, nbytes: int) -> None:
        if rc:
            self._recv_into = None
            self._read_failed(rc)
            return
        if nbytes == 0:
            self._recv_into = None
            self._eof()
            return
        protocol = self._protocol
        target = self._recv_target
        try:
            if target is None:
                data = self._recv_view[:nbytes].tobytes()
                if self._buffered:      # the protocol changed under a receive of ours
                    self._feed_buffered(protocol, data)
                else:
                    protocol.data_received(data)
            else:
                into, self._recv_into = self._recv_into, None
                if target is protocol:
                    protocol.buffer_updated(nbytes)
                else:                   # received into a protocol no longer ours
                    data = bytes(memoryview(into).cast("B")[:nbytes])
                    if self._buffered:
                        self._feed_buffered(protocol, data)
                    else:
                        protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
            return
        self._post_recv()

    @staticmethod
    def _feed_buffered(protocol: Any, data: bytes) -> None:
        # Bytes already received, given to a BufferedProtocol through its buffers.
        view = memoryview(data)
        while view:
            buf = memoryview(protocol.get_buffer(len(view))).cast("B")
            n = min(len(buf), len(view))
            if not n:
                raise RuntimeError("get_buffer() returned an empty buffer")
            buf[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]

    def _eof(self) -> None:
        self._read_done = True
        self._refresh()
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    def _read_failed(self, code: int) -> None:
        self._read_done = True
        self._refresh()
        exc = _stream_error(code)
        if isinstance(exc, ConnectionResetError):
            # As asyncio on Windows: a reset ends the connection quietly.
            if self._loop.get_debug():
                logger.debug("%r: connection reset on read", self)
            self._force_close(exc)
        else:
            self._fatal_error(exc, "Fatal read error on socket transport")

    # -- writing ---------------------------------------------------------------------
    def write(self, data: Any) -> None:
        """Send `data`: at once as far as the provider takes it, the rest
        queued (flow control counts what is queued)."""
        if self._direct and type(data) is bytes and data:
            # Nothing queued: straight to the provider, no packet.
            send_list = self._send_list
            send_list[0] = data
            try:
                sent = self._wsa_send(self._handle, send_list, 0, None, None, None)[1]
            except WinsockError as exc:
                send_list[0] = b""
                if exc.winerror != WSAEWOULDBLOCK:
                    self._write_failed(exc.winerror)
                    return
                sent = 0
            else:
                send_list[0] = b""      # no reference kept to the caller's bytes
                if sent == len(data):
                    return
            # The send buffer is full: the rest goes by an overlapped send.
            self._buffer += memoryview(data)[sent:]
            self._start_send()
            self._maybe_pause_protocol()
            return
        self._write_queued(data)

    def _write_queued(self, data: Any) -> None:
        # write() when it cannot send at once: checks, then the queue.
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, "
                            f"not {type(data).__name__!r}")
        if self._eof_pending or self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._conn_lost:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not data:
            return
        if type(data) is not bytes:
            data = bytes(data)          # the caller may change its buffer afterwards
            if self._direct:
                self.write(data)
                return
        self._buffer += data
        if self._inflight is None:
            self._start_send()
        self._maybe_pause_protocol()

    def _start_send(self) -> None:
        """Hand the queue to one overlapped send (none is in flight)."""
        inflight, self._buffer = self._buffer, bytearray()
        self._inflight = inflight
        self._direct = False
        try:
            self._wsa_send(self._handle, [inflight], 0, self._send_ov, None, None)
        except WinsockError as exc:
            self._inflight = None
            self._write_failed(exc.winerror)
            return

    def _send_done(self, rc: int, nbytes: int) -> None:
        """The overlapped send's packet (from the loop's _process_events)."""
        self._inflight = None
        if self._sock is None or (self._lost_scheduled and not self._buffer):
            return
        if rc:
            self._write_failed(rc)
            return
        if self._buffer:
            self._start_send()          # what was written meanwhile, in one send
            self._maybe_resume_protocol()
            return
        self._refresh()                 # drained: write() may send at once again
        self._maybe_resume_protocol()
        waiter = self._empty_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._closing:
            self._schedule_connection_lost(None)
        elif self._eof_pending:
            self._shutdown_send()

    def _write_failed(self, code: int) -> None:
        self._fatal_error(_stream_error(code), "Fatal write error on socket transport")

    def write_eof(self) -> None:
        """Shut the sending side down (SD_SEND) once the queue has drained;
        reading goes on."""
        if self._closing or self._eof_pending or self._eof_written:
            return
        self._eof_pending = True
        self._refresh()
        if self._inflight is None and not self._buffer:
            self._shutdown_send()

    def _shutdown_send(self) -> None:
        self._eof_pending = False
        self._eof_written = True
        self._refresh()
        try:
            self._sock.shutdown(SD_SEND)
        except OSError as exc:
            self._fatal_error(exc, "Fatal error on socket shutdown")

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high_water:
            return
        self._protocol_paused = True
        try:
            self._protocol.pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": "protocol.pause_writing() failed", "exception": exc,
                "transport": self, "protocol": self._protocol})

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or self.get_write_buffer_size() > self._low_water:
            return
        self._protocol_paused = False
        try:
            self._protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": "protocol.resume_writing() failed", "exception": exc,
                "transport": self, "protocol": self._protocol})

    # asyncio's sendfile fallback waits on this until everything written is sent.
    def _make_empty_waiter(self) -> asyncio.Future:
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        waiter = self._empty_waiter = self._loop.create_future()
        if self._inflight is None and not self._buffer:
            waiter.set_result(None)
        return waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None


def _set_result_unless_cancelled(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.set_result(None)
