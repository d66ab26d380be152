"""WspEventLoop: an asyncio event loop whose I/O is wsp overlapped I/O
(``docs/guide/asyncio.rst``).

The loop is a proactor loop (``asyncio.proactor_events.BaseProactorEventLoop``,
the base of Windows' ``ProactorEventLoop``) over a
:class:`~wsp.aio.proactor.WspProactor`.  It owns a ``wsp.Process``: its
provider is installed in that process's catalog and started with
``WSAStartup`` when the loop is made; ``close()`` ends with the last
``WSACleanup``, after the proactor has closed its port, so nothing is left.

What differs from a Windows proactor loop:

* no self-pipe: ``call_soon_threadsafe`` wakes the loop with a packet posted
  to its completion port, so the loop holds no host file descriptor (and so
  installs no signal wake-up fd);
* ``time()`` is the network's simulated time when the network has a clock,
  and the proactor's waits count that clock: with a virtual clock an idle
  loop jumps the clock to its next timer instead of sleeping;
* names: ``getaddrinfo`` knows IPv4 literals and the names given to the
  network with ``net.add_host`` (any other name is a ``socket.gaierror``
  with EAI_NONAME, as Windows' getaddrinfo fails for an unknown host), and ``create_connection``/``create_server`` make
  wsp sockets (:class:`~wsp.aio.socket.WspSocket`) instead of host sockets.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket as _host_socket
import time
from asyncio import proactor_events, sslproto
from typing import Any, Callable

from ..constants import AF_INET, SO_REUSEADDR, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET
from ..sim.provider import Provider
from ..spi.process import Process
from .proactor import WspProactor
from .socket import WspSocket
from .transport import WspStreamTransport

__all__ = ["WspEventLoop"]


class WspEventLoop(proactor_events.BaseProactorEventLoop):
    """An asyncio loop on `network` through `provider` (default: a new
    ``wsp.sim.Provider(network)``).  ``loop.process`` is its wsp Process,
    ``loop.network`` the network."""

    def __init__(self, network: Any, *, provider: Any = None) -> None:
        self.network = network
        if provider is None:
            provider = Provider(network)
        self.provider = provider
        process = Process()
        process.catalog.install(provider)
        process.WSAStartup(0x0202)
        try:
            # Load the provider now rather than with the first socket: its
            # WSPStartup puts the process on the network's clock, which the
            # loop's first wait (a sleep with no socket yet) must count.
            process.closesocket(process.WSASocket(AF_INET, SOCK_STREAM, 0))
            proactor = WspProactor(process)
        except BaseException:
            process.WSACleanup()
            raise
        self.process = process
        self.wsp_proactor = proactor
        if network.clock is None:
            proactor.wait_cap = 1.0
        self._wsp_time: Callable[[], float] = (
            network.time if network.clock is not None else time.monotonic)
        super().__init__(proactor)

    # -- the self-pipe, replaced by wake-up packets ------------------------------------
    def _make_self_pipe(self) -> None:
        self._ssock = None
        self._csock = _NoDescriptor()

    def _close_self_pipe(self) -> None:
        self._ssock = None
        self._csock = None

    def _write_to_self(self) -> None:
        self.wsp_proactor.post_wake()

    # -- stream transports: the loop's own (wsp.aio.transport) ------------------------
    def _make_socket_transport(self, sock: Any, protocol: asyncio.BaseProtocol,
                               waiter: asyncio.Future | None = None,
                               extra: dict[str, Any] | None = None,
                               server: Any = None) -> WspStreamTransport:
        # BaseProactorEventLoop makes every stream transport here (connect,
        # accept, connect_accepted_socket): a WspStreamTransport instead of
        # asyncio's _ProactorSocketTransport, which pays a future per read
        # and per write.
        return WspStreamTransport(self, self.adopt(sock), protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock: Any, protocol: asyncio.BaseProtocol,
                            sslcontext: Any, waiter: asyncio.Future | None = None, *,
                            server_side: bool = False, server_hostname: str | None = None,
                            extra: dict[str, Any] | None = None, server: Any = None,
                            ssl_handshake_timeout: float | None = None,
                            ssl_shutdown_timeout: float | None = None) -> asyncio.Transport:
        # TLS as asyncio does it on any loop: an SSLProtocol over the raw
        # stream transport (here the loop's own); the application gets the
        # SSLProtocol's transport.
        ssl_protocol = sslproto.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        WspStreamTransport(self, self.adopt(rawsock), ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    def _process_events(self, event_list: list[Any]) -> None:
        # Right after the proactor's wait (BaseEventLoop._run_once): the
        # transports' completions it took are delivered to their protocols
        # here, directly, without a callback handle each.
        completed = self.wsp_proactor.completed
        if not completed:
            return
        try:
            for callback, rc, nbytes in completed:
                callback(rc, nbytes)
        finally:
            completed.clear()

    # -- time ------------------------------------------------------------------------
    def time(self) -> float:
        """The network's simulated seconds with a clock, else ``time.monotonic()``."""
        return self._wsp_time()

    # -- sockets ---------------------------------------------------------------------
    def wsp_socket(self, family: int = AF_INET, type: int = SOCK_STREAM,  # noqa: A002
                   proto: int = 0) -> WspSocket:
        """A new wsp socket of the loop's process, for the loop's ``sock_*``
        methods or ``create_connection(sock=...)``/``create_server(sock=...)``."""
        return self.wsp_proactor.socket(family, type, proto)

    def adopt(self, sock: Any) -> WspSocket:
        """The WspSocket that stands in for `sock` (`sock` itself if it is
        one): a host ``socket.socket`` handed to the loop is adopted, a wsp
        socket of its family and type taking its place (``docs/guide/asyncio.rst``); the host
        socket never connects anywhere.  The stand-in lives until it is
        closed itself (closing a transport made over it closes it; the
        loop's close closes what is left), and keeps the host socket until
        then: closing the stand-in closes the host socket too."""
        return self.wsp_proactor.adopt(sock)

    async def sock_disconnect(self, sock: Any, *, reuse: bool = False) -> None:
        """End the connection of `sock` gracefully with DisconnectEx (a wsp
        addition: asyncio's loops have no such method): returns once the
        FIN has left after the data still queued, the peer reading to the
        end of the stream.  With ``reuse=True`` (TF_REUSE_SOCKET) the same
        socket can then ``sock_connect`` anew; otherwise close it.  A socket
        that is not connected: WinsockError(WSAENOTCONN)."""
        await self.wsp_proactor.disconnect(sock, reuse)

    async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0,  # noqa: A002
                          proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
        """IPv4 literals (and None: the any address with AI_PASSIVE, else
        127.0.0.1) and the network's names (``net.add_host``); an unknown
        name is ``socket.gaierror`` (EAI_NONAME)."""
        return resolve(host, port, family, type, proto, flags, self.network)

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        """The address back as ``(host, port)`` strings: the simulated network
        keeps no reverse names, so the host is its numeric form (as with
        NI_NUMERICHOST); a name is resolved first."""
        host, port = sockaddr[0], sockaddr[1]
        address = resolve(host, port, AF_INET, SOCK_STREAM, 0, 0, self.network)[0][4]
        return address[0], str(address[1])

    async def create_connection(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                host: Any = None, port: Any = None, *, family: int = 0,
                                proto: int = 0, flags: int = 0, sock: Any = None,
                                local_addr: Any = None, **kwargs: Any) -> Any:
        """As asyncio's, over a wsp socket connected here (ConnectEx); a
        host ``socket.socket`` as `sock` is adopted (``adopt``)."""
        if sock is not None:
            sock = self.adopt(sock)
        if sock is not None or (host is None and port is None):
            return await super().create_connection(
                protocol_factory, host, port, family=family, proto=proto, flags=flags,
                sock=sock, local_addr=local_addr, **kwargs)
        if kwargs.get("ssl") and kwargs.get("server_hostname") is None:
            kwargs["server_hostname"] = host
        for key in ("happy_eyeballs_delay", "interleave"):
            kwargs.pop(key, None)                    # one address family: nothing to race
        infos = await self.getaddrinfo(host, port, family=family, type=SOCK_STREAM,
                                       proto=proto, flags=flags)
        local = None
        if local_addr is not None:
            local = (await self.getaddrinfo(*local_addr, family=family, type=SOCK_STREAM,
                                            flags=flags))[0][4]
        errors: list[OSError] = []
        for fam, kind, _, _, address in infos:
            sock = self.wsp_socket(fam, kind)
            sock.setblocking(False)              # what asyncio (in debug mode) asks of it
            try:
                if local is not None:
                    sock.bind(local)
                await self.sock_connect(sock, address)
                break
            except OSError as exc:
                sock.close()
                errors.append(exc)
            except BaseException:
                sock.close()
                raise
        else:
            raise errors[0]
        return await super().create_connection(protocol_factory, sock=sock, **kwargs)

    async def create_server(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                            host: Any = None, port: Any = None, *, family: int = 0,
                            flags: int = _host_socket.AI_PASSIVE, sock: Any = None,
                            backlog: int = 100, reuse_address: Any = None,
                            reuse_port: Any = None, **kwargs: Any) -> asyncio.AbstractServer:
        """As asyncio's, listening on one wsp socket bound here (one address:
        a list of hosts is not served yet); a host ``socket.socket`` as
        `sock` is adopted (``adopt``)."""
        if sock is not None:
            sock = self.adopt(sock)
        if sock is not None or (host is None and port is None):
            return await super().create_server(
                protocol_factory, host, port, family=family, flags=flags, sock=sock,
                backlog=backlog, reuse_address=reuse_address, reuse_port=reuse_port, **kwargs)
        if not (host is None or isinstance(host, str)):
            hosts = list(host)
            if len(hosts) != 1:
                raise NotImplementedError("wsp.aio serves one address per server for now")
            host = hosts[0]
        if reuse_port:
            # What asyncio says where the socket module has no SO_REUSEPORT,
            # as on Windows: Winsock has no such option.
            raise ValueError("reuse_port: Winsock has no SO_REUSEPORT")
        infos = await self.getaddrinfo(host or None, port, family=family, type=SOCK_STREAM,
                                       flags=flags)
        fam, kind, _, _, address = infos[0]
        sock = self.wsp_socket(fam, kind)
        try:
            # asyncio's default on Windows is no SO_REUSEADDR (there it would
            # let another socket take the port); True shares the port with
            # other listeners that set it too, as the simulated network does.
            if reuse_address:
                sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
        return await super().create_server(protocol_factory, sock=sock, backlog=backlog,
                                           **kwargs)

    async def create_datagram_endpoint(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                       local_addr: Any = None, remote_addr: Any = None, *,
                                       family: int = 0, proto: int = 0, flags: int = 0,
                                       sock: Any = None, **kwargs: Any) -> Any:
        """As asyncio's, over a wsp datagram socket bound to `local_addr`
        (any address and port if None) and connected to `remote_addr` when
        one is given (then it only exchanges datagrams with that peer); a
        host ``socket.socket`` as `sock` is adopted (``adopt``)."""
        if sock is not None:
            sock = self.adopt(sock)
            return await super().create_datagram_endpoint(
                protocol_factory, local_addr, remote_addr, family=family, proto=proto,
                flags=flags, sock=sock, **kwargs)
        # asyncio's own answers: reuse_address it refuses for every loop
        # (since 3.8.1), reuse_port where the socket module lacks it (Windows).
        if kwargs.pop("reuse_address", None):
            raise ValueError("reuse_address=True: datagram endpoints refuse it, as "
                             "asyncio's do (port sharing on UDP lets others take the traffic)")
        if kwargs.pop("reuse_port", None):
            raise ValueError("reuse_port: Winsock has no SO_REUSEPORT")
        if kwargs.pop("allow_broadcast", None):
            raise NotImplementedError("the simulated network has no broadcast: "
                                      "allow_broadcast is not supported by wsp.aio")
        if kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(kwargs)}")
        remote = local = None
        if remote_addr is not None:
            remote = (await self.getaddrinfo(remote_addr[0], remote_addr[1], family=family,
                                             type=SOCK_DGRAM, proto=proto, flags=flags))[0][4]
        if local_addr is not None:
            local = (await self.getaddrinfo(local_addr[0], local_addr[1], family=family,
                                            type=SOCK_DGRAM, proto=proto,
                                            flags=flags | _host_socket.AI_PASSIVE))[0][4]
        sock = self.wsp_socket(AF_INET, SOCK_DGRAM, proto)
        try:
            sock.bind(local if local is not None else ("0.0.0.0", 0))
            if remote is not None:
                sock.connect(remote)
        except BaseException:
            sock.close()
            raise
        return await super().create_datagram_endpoint(protocol_factory, sock=sock)

    # -- closing ---------------------------------------------------------------------
    def close(self) -> None:
        """Close as asyncio's proactor loop does (the proactor cancels what is
        in flight and closes its port), then the last ``WSACleanup``: what
        is still open is reset and released, and the process holds nothing."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            super().close()
        finally:
            if self.process.wsa_started:
                self.process.WSACleanup()


class _NoDescriptor:
    """Stands where the loop keeps its self-pipe's write end: it has no
    descriptor (so ``signal.set_wakeup_fd(-1)``: none is installed)."""

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


def resolve(host: Any, port: Any, family: int, type: int, proto: int,  # noqa: A002
            flags: int, network: Any = None) -> list[tuple[Any, ...]]:
    """getaddrinfo's answer for an IPv4 literal or a name `network` knows
    (``net.add_host``); ``socket.gaierror`` with EAI_NONAME for any other
    name (AI_NUMERICHOST: for any name at all)."""
    if family not in (0, _host_socket.AF_UNSPEC, AF_INET):
        raise _host_socket.gaierror(_host_socket.EAI_FAMILY, "address family not supported")
    if host is None:
        host = "0.0.0.0" if flags & _host_socket.AI_PASSIVE else "127.0.0.1"
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str):
        raise TypeError(f"getaddrinfo() argument 1 must be string or None, "
                        f"not {type(host).__name__}")
    try:
        address = str(ipaddress.IPv4Address(host))
    except (ipaddress.AddressValueError, ValueError):
        known = None
        if network is not None and host and not flags & _host_socket.AI_NUMERICHOST:
            known = network.host_address(host)
        if known is None:
            # The error Windows' getaddrinfo gives for an unknown host
            # (WSAHOST_NOT_FOUND, which is socket.EAI_NONAME there).
            raise _host_socket.gaierror(_host_socket.EAI_NONAME,
                                        "getaddrinfo failed") from None
        address = known
    if port is None:
        number = 0
    elif isinstance(port, int):
        number = port
    elif isinstance(port, (str, bytes)) and port.isdigit():
        number = int(port)
    else:
        raise _host_socket.gaierror(_host_socket.EAI_SERVICE, "Servname not supported")
    if type:
        kinds = [type]
    else:
        kinds = [SOCK_STREAM, SOCK_DGRAM]
    return [(_host_socket.AddressFamily.AF_INET, _host_socket.SocketKind(kind), proto, "",
             (address, number)) for kind in kinds]
