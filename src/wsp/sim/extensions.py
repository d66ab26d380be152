"""The Microsoft extension functions of the simulated TCP provider
(``docs/guide/spi-model.rst, "Extension functions"``): AcceptEx, GetAcceptExSockaddrs, ConnectEx
and DisconnectEx, handed out by ``WSPIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, guid)``.

They follow Microsoft's pages for each function (AcceptEx, GetAcceptExSockaddrs,
ConnectEx, DisconnectEx):

* AcceptEx takes a connection for an *accept socket* the application made
  beforehand.  The accept socket's handle then names the accepted
  connection (the provider swaps the handle's context, which is its own).
  With ``receive_data_length > 0`` the operation completes when the first
  data arrives, that data at the start of the buffer; the local and remote
  addresses follow it in the buffer, each in its own area, and
  GetAcceptExSockaddrs reads them back.  The completion is reported as for
  an operation on the listening socket (its event or its port and key), as
  on Windows.
* ConnectEx connects a bound socket and sends its buffer once connected; a
  refused connect completes the operation with WSAECONNREFUSED.
* DisconnectEx starts a graceful disconnect (FIN after the queued data) and
  completes when the FIN has left; with TF_REUSE_SOCKET the handle is ready
  for AcceptEx or ConnectEx again afterwards.

Address areas: a ``sockaddr_in`` as Windows lays it out (family, port in
network order, IPv4 address, 8 zero bytes) at the start of an area of at
least 32 bytes, the size Microsoft's AcceptEx page asks for (the address
plus 16 bytes).
"""
from __future__ import annotations

import ipaddress
import struct
import uuid
from typing import Any, Callable

from ..constants import (AF_INET, SOCK_STREAM, TF_REUSE_SOCKET, WSAID_ACCEPTEX, WSAID_CONNECTEX,
                         WSAID_DISCONNECTEX, WSAID_GETACCEPTEXSOCKADDRS)
from ..errors import (WSA_INVALID_PARAMETER, WSA_IO_PENDING, WSAECONNREFUSED, WSAEFAULT,
                      WSAEINVAL, WSAEISCONN, WSAENOTCONN, WinsockError)
from ..spi.checks import gather, int_arg, scatter
from ..spi.structs import Overlapped
from .socket import PendingRecv, PendingSend, SimSocket, check_address

__all__ = ["Extensions", "ADDRESS_AREA", "pack_sockaddr", "unpack_sockaddr"]

#: The least room an AcceptEx address area needs: sizeof(sockaddr_in) + 16.
ADDRESS_AREA = 32

_SOCKADDR_IN = struct.Struct("<H2s4s8x")      # family (little-endian), port, address, zero


def pack_sockaddr(addr: tuple[str, int]) -> bytes:
    """``addr`` as the 16 bytes of a Windows ``sockaddr_in``."""
    host, port = addr
    return _SOCKADDR_IN.pack(AF_INET, port.to_bytes(2, "big"),
                             ipaddress.IPv4Address(host).packed)


def unpack_sockaddr(data: bytes) -> tuple[str, int]:
    """The ``(host, port)`` of a Windows ``sockaddr_in`` (16 bytes);
    WSAEINVAL if it is not an AF_INET address."""
    family, port, host = _SOCKADDR_IN.unpack(bytes(data[:_SOCKADDR_IN.size]))
    if family != AF_INET:
        raise WinsockError(WSAEINVAL, "GetAcceptExSockaddrs")
    return (str(ipaddress.IPv4Address(host)), int.from_bytes(port, "big"))


def _overlapped_arg(overlapped: object, funcname: str) -> Overlapped:
    # The extension functions are overlapped I/O only: they take no routine.
    if overlapped is None:
        raise WinsockError(WSA_INVALID_PARAMETER, funcname)
    if not isinstance(overlapped, Overlapped):
        raise TypeError(f"overlapped must be an Overlapped, not {type(overlapped).__name__}")
    return overlapped


def _lengths(receive_data_length: object, local_address_length: object,
             remote_address_length: object, funcname: str) -> tuple[int, int, int]:
    for value, name in ((receive_data_length, "receive_data_length"),
                        (local_address_length, "local_address_length"),
                        (remote_address_length, "remote_address_length")):
        int_arg(value, name, bool_ok=False)
    if (receive_data_length < 0 or local_address_length < ADDRESS_AREA
            or remote_address_length < ADDRESS_AREA):
        raise WinsockError(WSAEINVAL, funcname)
    return receive_data_length, local_address_length, remote_address_length


class _AcceptRequest:
    """An AcceptEx waiting for a connection on its listener."""

    __slots__ = ("accept_s", "view", "lengths", "op")

    def __init__(self, accept_s: int, view: memoryview, lengths: tuple[int, int, int],
                 op: Any) -> None:
        self.accept_s = accept_s
        self.view = view
        self.lengths = lengths
        self.op = op


class Extensions:
    """The provider's extension functions (a part of :class:`wsp.sim.Provider`)."""

    def extension_function(self, guid: object, funcname: str = "WSPIoctl") -> Callable[..., Any]:
        """The function SIO_GET_EXTENSION_FUNCTION_POINTER hands out for
        `guid` (a ``uuid.UUID``); WSAEINVAL for an unknown GUID."""
        if not isinstance(guid, uuid.UUID):
            raise TypeError(f"SIO_GET_EXTENSION_FUNCTION_POINTER takes a uuid.UUID, "
                            f"not {type(guid).__name__}")
        functions = {WSAID_ACCEPTEX: self.AcceptEx,
                     WSAID_GETACCEPTEXSOCKADDRS: self.GetAcceptExSockaddrs,
                     WSAID_CONNECTEX: self.ConnectEx,
                     WSAID_DISCONNECTEX: self.DisconnectEx}
        try:
            return functions[guid]
        except KeyError:
            raise WinsockError(WSAEINVAL, funcname) from None

    # -- AcceptEx ---------------------------------------------------------------------
    def AcceptEx(self, listen_s: int, accept_s: int, buffer: Any, receive_data_length: int,
                 local_address_length: int, remote_address_length: int,
                 overlapped: Overlapped) -> tuple[int, int]:
        """Accept a connection into `accept_s` (an unbound, unconnected stream
        socket of this provider): ``(0, nbytes)`` when it completed at once,
        ``(WSA_IO_PENDING, 0)`` otherwise; either way the completion is
        delivered as for an operation on `listen_s`.  `nbytes` is the size of
        the first data when `receive_data_length` > 0, else 0.

        WSAEINVAL: `listen_s` not listening, `accept_s` bound or connected,
        an address length below 32; WSAEFAULT: `buffer` smaller than the
        three areas; WSA_INVALID_PARAMETER: no overlapped."""
        funcname = "AcceptEx"
        listener = self.sim_socket(listen_s, funcname)
        acceptor = self.sim_socket(accept_s, funcname)
        overlapped = _overlapped_arg(overlapped, funcname)
        lengths = _lengths(receive_data_length, local_address_length, remote_address_length,
                           funcname)
        (view,) = scatter([buffer], funcname)
        if len(view) < sum(lengths):
            raise WinsockError(WSAEFAULT, funcname)
        with self.network.lock:
            if listener.kind != SOCK_STREAM or listener.state != "listening":
                raise WinsockError(WSAEINVAL, funcname)
            if (acceptor.kind != SOCK_STREAM or acceptor.bound or acceptor.state != "new"
                    or acceptor is listener):
                raise WinsockError(WSAEINVAL, funcname)
            # Delivered as an operation on the listening socket (Windows).
            op = self.start_op(listener, overlapped, None, None, view, funcname)
            request = _AcceptRequest(accept_s, view, lengths, op)
            if listener.accept_queue:
                self._accept_into(listener, request)
            else:
                listener.accept_requests.append(request)
            if overlapped.pending:
                return (WSA_IO_PENDING, 0)
            return (0, overlapped.InternalHigh)

    def serve_accept_requests(self, listener: SimSocket) -> None:
        """Network callback (lock held): a connection was queued on
        `listener`; hand it to the oldest AcceptEx still waiting."""
        while listener.accept_requests and listener.accept_queue:
            request = listener.accept_requests.popleft()
            if request.op.overlapped.operation is not request.op:
                continue                          # cancelled (the listener closed) meanwhile
            self._accept_into(listener, request)

    def _accept_into(self, listener: SimSocket, request: _AcceptRequest) -> None:
        """Make the oldest queued connection of `listener` the socket behind
        handle ``request.accept_s`` and finish (or continue) the AcceptEx."""
        engine = self.process.engine
        old = self.open_sockets.get(request.accept_s)
        if old is None or old.handle_closed:      # the accept socket was closed meanwhile
            engine.cancel(request.op)
            return
        server = listener.accept_queue.popleft()
        server.owner = self
        server.on_event = self.record_event
        server.nonblocking = old.nonblocking
        entry = old.entry
        entry.context = server                     # the handle now names the connection
        old.handle_closed = True
        self.adopt(server, request.accept_s)
        receive, local_len, _ = request.lengths
        view = request.view
        view[receive:receive + 16] = pack_sockaddr(server.local)
        view[receive + local_len:receive + local_len + 16] = pack_sockaddr(server.remote)
        if receive == 0:
            engine.complete(request.op, 0, 0)
            return
        # Completes with the first data: a receive into the data area whose
        # operation is the AcceptEx's.
        first = PendingRecv([view[:receive]], request.op)
        if server.recv_buf or server.eof:
            n = server.consume(first) if server.recv_buf else 0
            server.finish_recv(first, n, 0)
        else:
            server.pending_recvs.append(first)

    def GetAcceptExSockaddrs(self, buffer: Any, receive_data_length: int,
                             local_address_length: int,
                             remote_address_length: int) -> tuple[tuple[str, int],
                                                                  tuple[str, int]]:
        """``(local_addr, remote_addr)`` from a buffer AcceptEx filled, with
        the same three lengths.  WSAEINVAL for lengths AcceptEx would refuse
        or areas that hold no AF_INET address; WSAEFAULT for a short buffer."""
        funcname = "GetAcceptExSockaddrs"
        receive, local_len, remote_len = _lengths(receive_data_length, local_address_length,
                                                  remote_address_length, funcname)
        data = gather([buffer], funcname)
        if len(data) < receive + local_len + remote_len:
            raise WinsockError(WSAEFAULT, funcname)
        return (unpack_sockaddr(data[receive:receive + 16]),
                unpack_sockaddr(data[receive + local_len:receive + local_len + 16]))

    # -- ConnectEx ----------------------------------------------------------------------
    def ConnectEx(self, s: int, addr: tuple[str, int], send_buffer: Any,
                  overlapped: Overlapped) -> tuple[int, int]:
        """Connect the bound stream socket `s` to `addr`, then send
        `send_buffer` (None or empty: nothing).  ``(0, nbytes)`` when it
        completed at once; ``(WSA_IO_PENDING, 0)`` while the data waits for
        room, and for a refused connect, whose completion carries
        WSAECONNREFUSED.  WSAEINVAL: `s` not bound (or listening);
        WSAEISCONN: already connected; WSA_INVALID_PARAMETER: no overlapped."""
        funcname = "ConnectEx"
        sock = self.sim_socket(s, funcname)
        addr = check_address(addr, funcname)
        overlapped = _overlapped_arg(overlapped, funcname)
        data = b"" if send_buffer is None else gather([send_buffer], funcname)
        with self.network.lock:
            if sock.kind != SOCK_STREAM or sock.state == "listening" or not sock.bound:
                raise WinsockError(WSAEINVAL, funcname)
            if sock.state == "connected" or sock.reset_error:
                raise WinsockError(WSAEISCONN, funcname)
            op = self.start_op(sock, overlapped, None, None, data, funcname)
            sock.connect_error = None
            try:
                self.network.connect(sock, addr, funcname)
            except WinsockError as exc:
                if exc.winerror != WSAECONNREFUSED:
                    self.process.cancel_overlapped(op, exc.winerror, notify=False)
                    raise
                # The refusal is the operation's result (Microsoft's ConnectEx page).
                sock.connect_error = sock.so_error = WSAECONNREFUSED
                self.process.engine.complete(op, WSAECONNREFUSED, 0)
                return (WSA_IO_PENDING, 0)
            if sock.state == "connecting":
                # A clocked network: the handshake takes a round trip;
                # finish_connect completes the operation (and sends the data).
                sock.timing.connect_op = (op, data)
                return (WSA_IO_PENDING, 0)
            if not data:
                self.process.engine.complete(op, 0, 0)
                return (0, 0)
            entry = PendingSend(memoryview(data), op)
            sock.pending_sends.append(entry)
            sock.pump()
            if entry.done and not entry.error:
                return (0, len(data))
            return (WSA_IO_PENDING, 0)

    def finish_connect(self, sock: SimSocket) -> None:
        """Network callback (lock held): the handshake of `sock`, which a
        ConnectEx may be waiting for, has its outcome (``sock.connect_error``).
        The operation fails with the error, or completes -- at once without
        data, once the data is in the send buffer with it."""
        timing = sock.timing
        if timing is None or timing.connect_op is None:
            return
        op, data = timing.connect_op
        timing.connect_op = None
        if sock.connect_error:
            self.process.engine.complete(op, sock.connect_error, 0)
        elif not data:
            self.process.engine.complete(op, 0, 0)
        else:
            sock.pending_sends.append(PendingSend(memoryview(data), op))
            sock.pump()

    # -- DisconnectEx -------------------------------------------------------------------
    def DisconnectEx(self, s: int, overlapped: Overlapped, flags: int = 0) -> tuple[int, int]:
        """Disconnect `s` gracefully: its FIN follows the data still queued,
        and the operation completes when the FIN has left -- ``(0, 0)`` at
        once, else ``(WSA_IO_PENDING, 0)``.  With ``TF_REUSE_SOCKET`` the
        handle is afterwards an unbound, unconnected socket again, ready for
        AcceptEx or ConnectEx.  WSAENOTCONN: not connected; WSAEINVAL:
        other flags; WSA_INVALID_PARAMETER: no overlapped."""
        funcname = "DisconnectEx"
        sock = self.sim_socket(s, funcname)
        overlapped = _overlapped_arg(overlapped, funcname)
        int_arg(flags, "flags")
        if flags & ~TF_REUSE_SOCKET:
            raise WinsockError(WSAEINVAL, funcname)
        with self.network.lock:
            if sock.kind != SOCK_STREAM or sock.state != "connected" or sock.disconnect_op:
                raise WinsockError(WSAENOTCONN, funcname)
            op = self.start_op(sock, overlapped, None, None, None, funcname)
            sock.disconnect_op = (op, bool(flags & TF_REUSE_SOCKET))
            sock.shut_send = True
            sock.shutdown_send = True
            if not sock.reset_error:
                sock.fin_queued = True
                sock.pump()
            if sock.disconnect_op is not None and (sock.fin_sent or sock.reset_error):
                self.finish_disconnect(sock)      # the FIN left before this call pumped
            if overlapped.pending:
                return (WSA_IO_PENDING, 0)
            return (0, 0)

    def finish_disconnect(self, sock: SimSocket) -> None:
        """Network callback (lock held): the FIN of `sock`'s DisconnectEx has
        left (or the connection was reset): complete the operation, and with
        TF_REUSE_SOCKET give the handle a fresh, unconnected socket."""
        if sock.disconnect_op is None:            # finished already
            return
        op, reuse = sock.disconnect_op
        sock.disconnect_op = None
        error = sock.reset_error
        if reuse and not sock.handle_closed:
            handle = sock.handle
            fresh = SimSocket(self.network, SOCK_STREAM, self)
            fresh.on_event = self.record_event
            fresh.nonblocking = sock.nonblocking
            fresh.sndbuf, fresh.rcvbuf = sock.sndbuf, sock.rcvbuf
            fresh.linger_onoff, fresh.linger_seconds = sock.linger_onoff, sock.linger_seconds
            sock.entry.context = fresh
            # The old socket leaves the handle as a graceful close would.
            sock.handle_closed = True
            self.network.unbind(sock)
            if sock.peer is not None and sock.peer.handle_closed:
                self.network.forget_if_done(sock)
            self.adopt(fresh, handle)
        self.process.engine.complete(op, error, 0)
