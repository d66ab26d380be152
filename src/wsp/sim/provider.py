"""wsp.sim.Provider: a non-IFS base service provider for AF_INET stream and datagram sockets over a
:class:`~wsp.sim.Network` (``docs/guide/spi-model.rst, "Service providers"``,
``docs/guide/network.rst``).

Its socket handles come from WPUCreateSocketHandle and go back with WPUCloseSocketHandle; its
completions go out through the engine (``Process.start_overlapped`` / ``complete_overlapped``), so
the delivery rules of ``docs/guide/spi-model.rst, "Overlapped operations"`` hold for every
operation.  The close logic follows the LPWSPCloseSocket seed line by line (see
:meth:`Provider.WSPCloseSocket`), the cleanup logic the LPWSPCleanup seed
(:meth:`Provider.on_cleanup`).

Blocking calls wait on the socket's condition (the GIL is released while
waiting), run APCs queued to the waiting thread (they are alertable), and
fail with WSAEINTR when another thread closes the socket.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..constants import (AF_INET, CF_ACCEPT, CF_DEFER, CF_REJECT, FD_ACCEPT, FD_ALL_EVENTS, FD_CONNECT,
                         FD_CLOSE, FD_READ, FD_WRITE, FIONBIO, FIONREAD, IPPROTO_TCP, IPPROTO_UDP,
                         SD_RECEIVE, SD_SEND, SO_ACCEPTCONN,
                         SO_DONTLINGER, SO_ERROR, SO_LINGER, SO_RCVBUF, SO_REUSEADDR, SO_SNDBUF,
                         SO_TYPE, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, SOMAXCONN,
                         SIO_GET_EXTENSION_FUNCTION_POINTER, SO_UPDATE_ACCEPT_CONTEXT,
                         SO_UPDATE_CONNECT_CONTEXT)
from ..errors import (WSAEALREADY, WSAECONNREFUSED, WSAECONNRESET, WSAENETDOWN, WSAEAFNOSUPPORT, WSAEINTR, WSAEINVAL, WSAEISCONN,
                      WSAENOPROTOOPT, WSAENOTCONN, WSAENOTSOCK, WSAEOPNOTSUPP,
                      WSAEPROTONOSUPPORT, WSAEPROTOTYPE, WSAESOCKTNOSUPPORT,
                      WSAEWOULDBLOCK, WSATRY_AGAIN, WinsockError)
from ..spi.checks import block_time, int_arg
from ..spi.provider import ServiceProvider
from ..spi.structs import Linger
from .network import Network
from .socket import ANY_HOST, DEFAULT_HOST, SimSocket, check_address

from .close import Closing
from .data import DataPath
from .extensions import Extensions
from .select import Selecting

__all__ = ["Provider"]

_MAX_BACKLOG = 200




class Provider(DataPath, Closing, Selecting, Extensions, ServiceProvider):
    """The simulated network's TCP/UDP provider for one process."""

    description = "wsp simulated TCP/IP provider"
    #: the catalog entry its sockets are created under (WSAPROTOCOL_INFO.dwCatalogEntryId);
    #: Process.catalog.install sets the instance's own
    catalog_entry_id = 1001
    #: the (family, type, protocol) triples it serves: one base catalog entry each
    protocols = ((AF_INET, SOCK_STREAM, IPPROTO_TCP), (AF_INET, SOCK_DGRAM, IPPROTO_UDP))

    def __init__(self, network: Network, host: str | None = None) -> None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be a wsp.sim.Network, not {type(network).__name__}")
        if host is None:
            host = DEFAULT_HOST
        elif not isinstance(host, str):
            raise TypeError(f"host must be an IPv4 string, not {type(host).__name__}")
        else:
            try:
                host = check_address((host, 0))[0]
            except WinsockError:
                raise ValueError(f"host must be a dotted IPv4 address, not {host!r}") from None
            if host == ANY_HOST:
                raise ValueError("host must be a machine's address, not the wildcard 0.0.0.0")
        super().__init__()
        self.network = network
        #: the machine this provider's process stands for: the local address
        #: of its sockets that connect or send unbound (``docs/guide/time-and-links.rst``)
        self.host = host
        #: the network's simulated clock (None: no time), which the process's waits count
        self.clock = network.clock
        self.open_sockets: dict[int, SimSocket] = {}    # open handles
        self._callbacks = threading.local()          # depth of provider callbacks per thread

    def on_startup(self, protocol_info: Any) -> None:
        """The first WSPStartup: a process on a clocked network waits by its
        clock (WSAEINVAL if it already waits by another network's)."""
        if self.clock is not None:
            self.process.use_clock(self.clock, "WSPStartup")

    # -- plumbing -------------------------------------------------------------------
    def sim_socket(self, s: object, funcname: str, network: bool = True) -> SimSocket:
        """The socket behind handle `s` (WSAENOTSOCK first, as Winsock checks
        the socket before anything else), then, unless `network` is False,
        the network (WSAENETDOWN)."""
        sock = self._context_of(s, funcname)
        if type(sock) is not SimSocket or sock.owner is not self:
            raise WinsockError(WSAENOTSOCK, funcname)
        if self.clock is not None:
            self.clock.touch()                 # a call on the network: it holds a virtual clock
        if network and self.network.down:
            raise WinsockError(WSAENETDOWN, funcname)
        return sock

    def record_event(self, sock: SimSocket, fd: int, error: int) -> None:
        """Tell the process about a network event recorded for `sock`: signal
        the event object selected with WSPEventSelect."""
        if sock.event is not None and self._process is not None:
            try:
                self._process.WSASetEvent(sock.event)
            except WinsockError:                               # the event was closed
                pass

    def block_until(self, sock: SimSocket, ready: Callable[[], bool], funcname: str,
               deadline: float | None = None) -> bool:
        """Wait (lock held; the GIL and the lock are released while waiting)
        until ready(); alertable: APCs queued to this thread run meanwhile.
        False if the deadline passed first; WSAEINTR if the socket was closed
        or the provider cleaned up under us.  `deadline` is monotonic seconds,
        or, on a clocked network, simulated seconds (``clock.deadline``)."""
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
            clock = self.clock
            if clock is not None:
                return self._block_by(clock, sock, cond, ready, wake, funcname, deadline)
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

    def _block_by(self, clock: Any, sock: SimSocket, cond: Any, ready: Callable[[], bool],
                  wake: Callable[[], Any], funcname: str, deadline: float | None) -> bool:
        """:meth:`block_until`'s loop on a clocked network (the caller holds
        the network lock and has registered the APC waker), by
        wsp.spi.clock's wait protocol.  The network lock is the clock's, so
        the clock's wake cannot fall between the last look and the wait on
        `cond`, which releases it; the wait is still bounded (block_time), so
        a virtual clock settles again now and then."""
        process = self.process
        me = threading.get_ident()

        def can_act() -> bool:
            return ready() or sock.interrupted or bool(process.threads.pending(me))

        while not ready():
            if sock.interrupted:
                raise WinsockError(WSAEINTR, funcname)
            if process.threads.pending(me):
                process.threads.run_apcs(me)
                continue
            if clock.expired(deadline):
                return False
            try:
                timeout = clock.begin_wait(can_act, wake, deadline)
                # Settling the clock may have delivered what this waits for.
                if not can_act() and not clock.expired(deadline):
                    cond.wait(block_time(clock, timeout))
            finally:
                clock.end_wait()
        return True

    def await_entry(self, sock: SimSocket, queue: Any, entry: Any, funcname: str) -> None:
        """A blocking call: wait until the network finishes `entry` (queued
        on `queue`); raise its error.  If the wait itself fails (WSAEINTR,
        Ctrl-C), the entry leaves the queue so nothing is delivered to it."""
        try:
            self.block_until(sock, lambda: entry.done, funcname)
        except BaseException:
            if entry in queue:
                queue.remove(entry)
            raise
        if entry.error:
            raise WinsockError(entry.error, funcname)

    def adopt(self, sock: SimSocket, handle: int) -> None:
        """Give `sock` its handle (lock held)."""
        sock.handle = handle
        sock.entry = self.process.find_socket(handle)
        sock.engine = self.process.engine
        self.open_sockets[handle] = sock

    # -- socket, bind, listen, connect, accept -------------------------------------------
    def WSPSocket(self, af: int, type: int, protocol: int, protocol_info: Any = None,
                  g: int = 0, flags: int = 0) -> int:
        """A new AF_INET stream (TCP) or datagram (UDP) socket."""
        funcname = "WSPSocket"
        self._require_started(funcname)
        if self.clock is not None:
            self.clock.touch()
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
        sock.on_event = self.record_event
        # The handle names this provider's own catalog entry (not a chain a
        # layer above passed down as protocol_info): ws2_32 routes by it.
        s = self.upcalls.WPUCreateSocketHandle(self.catalog_entry_id, sock)
        with self.network.lock:
            self.adopt(sock, s)
        return s

    def WSPBind(self, s: int, addr: tuple[str, int]) -> None:
        """Bind `s` to `addr` ``(host, port)``; port 0 picks a free port.
        WSAEADDRINUSE when taken (SO_REUSEADDR on both shares it), WSAEINVAL
        when already bound, WSAEFAULT for a malformed address."""
        funcname = "WSPBind"
        sock = self.sim_socket(s, funcname)
        addr = check_address(addr, funcname)
        with self.network.lock:
            if sock.bound or sock.state != "new":
                raise WinsockError(WSAEINVAL, funcname)
            self.network.bind(sock, addr, funcname)

    def WSPListen(self, s: int, backlog: int) -> None:
        """Make stream socket `s` listen with `backlog` (clamped as Windows
        does).  WSAEINVAL unbound, WSAEOPNOTSUPP for a datagram socket,
        WSAEISCONN when connected."""
        funcname = "WSPListen"
        sock = self.sim_socket(s, funcname)
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
        sock = self.sim_socket(s, funcname)
        addr = check_address(addr, funcname)
        with self.network.lock:
            if sock.kind == SOCK_DGRAM:
                if addr == (ANY_HOST, 0):
                    sock.remote = None                 # dissolve the association
                    return
                if not sock.bound:
                    self.network.bind(sock, (self.host, 0), funcname)
                sock.remote = addr
                return
            if sock.state == "listening":
                raise WinsockError(WSAEINVAL, funcname)
            if sock.state == "connected" or sock.reset_error:
                raise WinsockError(WSAEISCONN, funcname)
            if sock.state == "connecting":
                raise WinsockError(WSAEALREADY, funcname)
            sock.connect_error = None                  # a new attempt
            try:
                self.network.connect(sock, addr, funcname)
            except WinsockError as exc:
                if not sock.nonblocking or exc.winerror != WSAECONNREFUSED:
                    raise
                # Windows answers a non-blocking connect with WSAEWOULDBLOCK
                # whatever its outcome; a refusal shows later, in select's
                # except set, in FD_CONNECT and in SO_ERROR (Wine's test_select;
                # the WSAEventSelect page).  The network knew at once.
                sock.connect_error = sock.so_error = WSAECONNREFUSED
                sock.armed |= FD_CONNECT
                sock.post(FD_CONNECT, WSAECONNREFUSED)
                sock.wake()
                raise WinsockError(WSAEWOULDBLOCK, funcname) from None
            if sock.nonblocking:
                raise WinsockError(WSAEWOULDBLOCK, funcname)
            if sock.state == "connecting":
                # A clocked network: the answer comes back after a round trip.
                self.block_until(sock, lambda: sock.state != "connecting", funcname)
                if sock.connect_error:
                    raise WinsockError(sock.connect_error, funcname)

    def WSPAccept(self, s: int, condition: Callable[..., int] | None = None,
                  callback_data: Any = 0) -> tuple[int, tuple[str, int]]:
        """Accept a queued connection: ``(new_socket, caller_address)``.

        ``condition(caller_addr, callee_addr, callback_data)`` may return
        CF_ACCEPT, CF_REJECT (the connection is reset; WSAECONNREFUSED) or
        CF_DEFER (it stays queued; WSATRY_AGAIN).  The accepted socket
        inherits the listener's options and WSPEventSelect registration."""
        funcname = "WSPAccept"
        sock = self.sim_socket(s, funcname)
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
                self.block_until(sock, lambda: bool(sock.accept_queue), funcname)
            server = sock.accept_queue[0]
        if condition is not None:
            verdict = self.callback(condition, server.remote, server.local, callback_data)
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
            server.on_event = self.record_event
            server.nonblocking = sock.nonblocking
            server.event, server.event_mask = sock.event, sock.event_mask
            server.armed = FD_ALL_EVENTS
            new = self.upcalls.WPUCreateSocketHandle(self.catalog_entry_id, server)
            self.adopt(server, new)
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

    def in_callback(self) -> int:
        """How deep the calling thread is in callbacks of this provider (0:
        not in one)."""
        return getattr(self._callbacks, "depth", 0)

    def callback(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run a callback of the application; while it runs, WSPCloseSocket
        on this thread fails with WSAEINPROGRESS (seed: LPWSPCloseSocket)."""
        depth = self.in_callback()
        self._callbacks.depth = depth + 1
        try:
            return func(*args)
        finally:
            self._callbacks.depth = depth

    # -- options, ioctl, names --------------------------------------------------------------
    def WSPSetSockOpt(self, s: int, level: int, optname: int, value: Any) -> None:
        """Set a SOL_SOCKET option: SO_LINGER (a Linger), SO_DONTLINGER,
        SO_REUSEADDR, SO_SNDBUF, SO_RCVBUF (SO_LINGER on a datagram socket:
        WSAENOPROTOOPT); SO_UPDATE_ACCEPT_CONTEXT (the listening socket an
        AcceptEx took the connection from) and SO_UPDATE_CONNECT_CONTEXT
        (after ConnectEx) are accepted: the simulated socket already has
        the state they update.
        WSAENOPROTOOPT for an unknown option, WSAEINVAL for an unknown level."""
        funcname = "WSPSetSockOpt"
        sock = self.sim_socket(s, funcname)
        int_arg(level, "level")
        int_arg(optname, "optname")
        if level != SOL_SOCKET:
            raise WinsockError(WSAEINVAL, funcname)
        if optname == SO_UPDATE_ACCEPT_CONTEXT:
            listener = self.sim_socket(value, funcname)    # a socket of this provider
            if listener.state != "listening":
                raise WinsockError(WSAEINVAL, funcname)
            return
        if optname == SO_UPDATE_CONNECT_CONTEXT:
            return
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
        """Read a SOL_SOCKET option (SO_LINGER gives a Linger, SO_DONTLINGER a
        bool, SO_ERROR, SO_TYPE, SO_ACCEPTCONN, the buffer sizes ...).
        WSAENOPROTOOPT for an unknown option, WSAEINVAL for an unknown level."""
        funcname = "WSPGetSockOpt"
        sock = self.sim_socket(s, funcname)
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
                error = sock.so_error       # Windows keeps it: reading does not clear it
                return error
            if optname == SO_REUSEADDR:
                return sock.reuseaddr
            if optname == SO_ACCEPTCONN:
                return sock.state == "listening"
            raise WinsockError(WSAENOPROTOOPT, funcname)

    def WSPIoctl(self, s: int, code: int, value: Any = None, overlapped: Any = None,
                 completion_routine: Any = None, thread_id: Any = None) -> Any:
        """FIONBIO (value 0/1: blocking off/on... i.e. non-blocking on/off),
        FIONREAD (bytes readable: the stream's buffer, or the size of the
        first datagram) and SIO_GET_EXTENSION_FUNCTION_POINTER (value: a
        ``uuid.UUID``; the result is AcceptEx, GetAcceptExSockaddrs,
        ConnectEx or DisconnectEx, see wsp.sim.extensions; WSAEINVAL for
        another GUID).  Other codes: WSAEINVAL."""
        funcname = "WSPIoctl"
        sock = self.sim_socket(s, funcname)
        int_arg(code, "code")
        with self.network.lock:
            if code == FIONBIO:
                on = self._flag(value)
                if not on and sock.event_mask:
                    raise WinsockError(WSAEINVAL, funcname)   # WSPEventSelect forces it
                sock.nonblocking = on
                result: Any = None
            elif code == SIO_GET_EXTENSION_FUNCTION_POINTER:
                result = self.extension_function(value, funcname)
            elif code == FIONREAD:
                if sock.kind == SOCK_DGRAM:
                    result = len(sock.dgrams[0][0]) if sock.dgrams else 0
                else:
                    result = len(sock.recv_buf)
            else:
                raise WinsockError(WSAEINVAL, funcname)
            if overlapped is not None:                # completes at once, still delivered
                op = self.start_op(sock, overlapped, completion_routine, thread_id, None, funcname)
                self.process.complete_overlapped(op, 0, 0)
            return result

    def WSPGetSockName(self, s: int) -> tuple[str, int]:
        """The local ``(host, port)`` of `s`; WSAEINVAL when it is not bound."""
        funcname = "WSPGetSockName"
        sock = self.sim_socket(s, funcname)
        with self.network.lock:
            if sock.local is None:
                raise WinsockError(WSAEINVAL, funcname)
            return sock.local

    def WSPGetPeerName(self, s: int) -> tuple[str, int]:
        """The peer's ``(host, port)`` of `s`; WSAENOTCONN when not connected."""
        funcname = "WSPGetPeerName"
        sock = self.sim_socket(s, funcname)
        with self.network.lock:
            if sock.remote is None or (sock.kind == SOCK_STREAM and sock.state != "connected"):
                raise WinsockError(WSAENOTCONN, funcname)
            return sock.remote

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
        self.sim_socket(s, "WSPSendDisconnect")
        if disconnect_data:
            raise WinsockError(WSAEOPNOTSUPP, "WSPSendDisconnect")
        self.shutdown_socket(s, SD_SEND, "WSPSendDisconnect")

    def WSPRecvDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """Stop receiving (shutdown SD_RECEIVE); TCP carries no disconnect data."""
        self.sim_socket(s, "WSPRecvDisconnect")
        if disconnect_data:
            raise WinsockError(WSAEOPNOTSUPP, "WSPRecvDisconnect")
        self.shutdown_socket(s, SD_RECEIVE, "WSPRecvDisconnect")

    def reset_connection(self, s: int, funcname: str = "reset_connection") -> None:
        """Reset the connection of stream socket `s` from the network, as a
        middlebox's RST would: both ends fail with WSAECONNRESET and FD_CLOSE
        carries it (the fault layer's "reset").  WSAENOTSOCK for a handle
        that is not this provider's; a socket without a connection is left
        alone."""
        sock = self.sim_socket(s, funcname, network=False)
        network = self.network
        with network.lock:
            network.reset(sock.connection, WSAECONNRESET, close_error=WSAECONNRESET)

    def sockets(self) -> list[int]:
        """The handles of this provider's open sockets."""
        with self.network.lock:
            return list(self.open_sockets)

