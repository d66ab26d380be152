"""wsp.sim.Provider, errors and options (SPEC §3, §6.3, §7): socket options,
argument checks in Winsock's order (the socket first), the network-down
switch, foreign handles, WSANOTINITIALISED, address strings, and the
per-connection fault hooks (reset, hold/release, drop)."""
from __future__ import annotations

import pytest

import wsp
import wsp.sim
from simkit import LOCAL, Sim, recv_all, sim_socket, stack, wait_blocked
from helpers import Worker, assert_winsock
from wsp import (AF_INET, FD_READ, FIONBIO, FIONREAD, INVALID_SOCKET, SD_SEND, SO_ACCEPTCONN,
                 SO_DONTLINGER, SO_ERROR, SO_LINGER, SO_RCVBUF, SO_REUSEADDR, SO_SNDBUF, SO_TYPE,
                 SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, Linger, Overlapped)


# ---------------------------------------------------------------- options
def test_option_defaults(sim):
    c, a, lst = sim.pair()
    u = sim.socket(SOCK_DGRAM)
    g = sim.prov.WSPGetSockOpt
    assert g(c, SOL_SOCKET, SO_SNDBUF) == 65536
    assert g(c, SOL_SOCKET, SO_RCVBUF) == 65536
    assert g(c, SOL_SOCKET, SO_TYPE) == SOCK_STREAM
    assert g(u, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM
    assert g(c, SOL_SOCKET, SO_ERROR) == 0
    assert g(c, SOL_SOCKET, SO_REUSEADDR) is False
    assert g(c, SOL_SOCKET, SO_LINGER) == Linger(0, 0)
    assert g(c, SOL_SOCKET, SO_DONTLINGER) is True
    assert g(lst, SOL_SOCKET, SO_ACCEPTCONN) is True
    assert g(c, SOL_SOCKET, SO_ACCEPTCONN) is False


def test_buffer_sizes_get_and_set(sim):
    s = sim.socket()
    sim.prov.WSPSetSockOpt(s, SOL_SOCKET, SO_SNDBUF, 1234)
    sim.prov.WSPSetSockOpt(s, SOL_SOCKET, SO_RCVBUF, 0)
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_SNDBUF) == 1234
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_RCVBUF) == 0
    for opt in (SO_SNDBUF, SO_RCVBUF):
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPSetSockOpt(s, SOL_SOCKET, opt, -1)
        assert_winsock(e, wsp.WSAEINVAL)
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_SNDBUF) == 1234


def test_accepted_socket_inherits_the_listeners_options(sim):
    lst, addr = sim.listener()
    sim.prov.WSPSetSockOpt(lst, SOL_SOCKET, SO_RCVBUF, 100)
    sim.prov.WSPSetSockOpt(lst, SOL_SOCKET, SO_SNDBUF, 200)
    sim.prov.WSPSetSockOpt(lst, SOL_SOCKET, SO_LINGER, Linger(1, 7))
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    a, _ = sim.prov.WSPAccept(lst)
    assert sim.prov.WSPGetSockOpt(a, SOL_SOCKET, SO_RCVBUF) == 100
    assert sim.prov.WSPGetSockOpt(a, SOL_SOCKET, SO_SNDBUF) == 200
    assert sim.prov.WSPGetSockOpt(a, SOL_SOCKET, SO_LINGER) == Linger(1, 7)
    assert sim.prov.WSPGetSockOpt(a, SOL_SOCKET, SO_ACCEPTCONN) is False


@pytest.mark.parametrize("opt", [SO_TYPE, SO_ERROR, SO_ACCEPTCONN])
def test_read_only_options_are_enoprotoopt_on_set(sim, opt):
    s = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSetSockOpt(s, SOL_SOCKET, opt, 1)
    assert_winsock(e, wsp.WSAENOPROTOOPT)
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_TYPE) == SOCK_STREAM


def test_reuseaddr_get_and_set(sim):
    s = sim.socket()
    sim.prov.WSPSetSockOpt(s, SOL_SOCKET, SO_REUSEADDR, True)
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_REUSEADDR) is True
    sim.prov.WSPSetSockOpt(s, SOL_SOCKET, SO_REUSEADDR, 0)
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_REUSEADDR) is False


def test_linger_takes_and_gives_a_linger_and_dontlinger_is_its_negation(sim):
    s = sim.socket()
    p = sim.prov
    p.WSPSetSockOpt(s, SOL_SOCKET, SO_LINGER, Linger(1, 10))
    got = p.WSPGetSockOpt(s, SOL_SOCKET, SO_LINGER)
    assert isinstance(got, Linger) and (got.l_onoff, got.l_linger) == (1, 10)
    assert p.WSPGetSockOpt(s, SOL_SOCKET, SO_DONTLINGER) is False
    p.WSPSetSockOpt(s, SOL_SOCKET, SO_DONTLINGER, True)
    assert p.WSPGetSockOpt(s, SOL_SOCKET, SO_LINGER).l_onoff == 0
    assert p.WSPGetSockOpt(s, SOL_SOCKET, SO_DONTLINGER) is True
    p.WSPSetSockOpt(s, SOL_SOCKET, SO_DONTLINGER, False)
    assert p.WSPGetSockOpt(s, SOL_SOCKET, SO_LINGER).l_onoff != 0
    assert p.WSPGetSockOpt(s, SOL_SOCKET, SO_DONTLINGER) is False
    for onoff, seconds in ((0, 0), (1, 0), (0, 30), (3, 65535)):
        p.WSPSetSockOpt(s, SOL_SOCKET, SO_LINGER, Linger(onoff, seconds))
        assert p.WSPGetSockOpt(s, SOL_SOCKET, SO_LINGER) == Linger(onoff, seconds)
        assert p.WSPGetSockOpt(s, SOL_SOCKET, SO_DONTLINGER) is (not onoff)


def test_linger_structure_checks():
    with pytest.raises(TypeError):
        Linger("1", 0)
    with pytest.raises(TypeError):
        Linger(1, 2.5)
    with pytest.raises(wsp.WinsockError) as e:
        Linger(1, 65536)
    assert_winsock(e, wsp.WSAEINVAL)


@pytest.mark.parametrize("level", [0x1234, 0x7FFF, -1])
def test_unknown_level_is_einval(sim, level):
    s = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSetSockOpt(s, level, SO_SNDBUF, 1)
    assert_winsock(e, wsp.WSAEINVAL)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetSockOpt(s, level, SO_SNDBUF)
    assert_winsock(e, wsp.WSAEINVAL)
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_SNDBUF) == 65536


@pytest.mark.parametrize("opt", [0x7777, 0, 0x100000])
def test_unknown_option_is_enoprotoopt(sim, opt):
    s = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSetSockOpt(s, SOL_SOCKET, opt, 1)
    assert_winsock(e, wsp.WSAENOPROTOOPT)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetSockOpt(s, SOL_SOCKET, opt)
    assert_winsock(e, wsp.WSAENOPROTOOPT)


@pytest.mark.parametrize("opt, value", [(SO_SNDBUF, "4096"), (SO_RCVBUF, 1.5), (SO_SNDBUF, None),
                                        (SO_LINGER, (1, 10)), (SO_LINGER, 1),
                                        (SO_REUSEADDR, "yes"), (SO_DONTLINGER, None)])
def test_wrong_option_value_type_is_type_error(sim, opt, value):
    s = sim.socket()
    with pytest.raises(TypeError):
        sim.prov.WSPSetSockOpt(s, SOL_SOCKET, opt, value)
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_SNDBUF) == 65536
    assert sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_LINGER) == Linger(0, 0)


def test_non_int_level_or_option_is_type_error(sim):
    s = sim.socket()
    for call in (lambda: sim.prov.WSPSetSockOpt(s, "SOL_SOCKET", SO_SNDBUF, 1),
                 lambda: sim.prov.WSPSetSockOpt(s, SOL_SOCKET, "SO_SNDBUF", 1),
                 lambda: sim.prov.WSPGetSockOpt(s, None, SO_SNDBUF),
                 lambda: sim.prov.WSPGetSockOpt(s, SOL_SOCKET, 1.0)):
        with pytest.raises(TypeError):
            call()


# ------------------------------------------------------- ioctl, shutdown
@pytest.mark.parametrize("code", [0, 0x12345678, 0x8004667D])
def test_unknown_ioctl_code_is_einval(sim, code):
    s = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPIoctl(s, code)
    assert_winsock(e, wsp.WSAEINVAL)


def test_ioctl_argument_types(sim):
    s = sim.socket()
    for call in (lambda: sim.prov.WSPIoctl(s, "FIONBIO", 1),
                 lambda: sim.prov.WSPIoctl(s, FIONBIO, "1"),
                 lambda: sim.prov.WSPIoctl(s, FIONBIO, None)):
        with pytest.raises(TypeError):
            call()


def test_overlapped_ioctl_completes_and_is_delivered(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"12345"])
    ev = sim.event()
    ov = Overlapped(ev)
    assert sim.prov.WSPIoctl(a, FIONREAD, None, ov) == 5
    assert sim.signalled(ev)
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (0, 0)


@pytest.mark.parametrize("how", [3, -1, 100])
def test_bad_shutdown_how_is_einval(sim, how):
    c, a, _ = sim.pair()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPShutdown(c, how)
    assert_winsock(e, wsp.WSAEINVAL)
    assert sim.prov.WSPSend(c, [b"ok"]) == (0, 2)            # nothing was shut down
    with pytest.raises(TypeError):
        sim.prov.WSPShutdown(c, "1")


# -------------------------------------------------------- argument types
def _type_error_calls(sim):
    c, a, lst = sim.pair()
    u = sim.socket(SOCK_DGRAM)
    sim.prov.WSPBind(u, (LOCAL, 0))
    p = sim.prov
    ev = sim.event()
    return [
        ("bind", lambda: p.WSPBind(sim.socket(), "127.0.0.1:80")),
        ("listen", lambda: p.WSPListen(lst, "5")),
        ("connect", lambda: p.WSPConnect(sim.socket(), "127.0.0.1:80")),
        ("accept", lambda: p.WSPAccept(lst, 42)),
        ("send str", lambda: p.WSPSend(c, "text")),
        ("send single buffer", lambda: p.WSPSend(c, b"bytes")),
        ("send ints", lambda: p.WSPSend(c, [1, 2])),
        ("send None", lambda: p.WSPSend(c, None)),
        ("send flags", lambda: p.WSPSend(c, [b"x"], "0")),
        ("send overlapped", lambda: p.WSPSend(c, [b"x"], 0, "ov")),
        ("send routine", lambda: p.WSPSend(c, [b"x"], 0, Overlapped(), 42)),
        ("send thread id", lambda: p.WSPSend(c, [b"x"], 0, Overlapped(), None, 7)),
        ("sendto to", lambda: p.WSPSendTo(u, [b"x"], 0, "127.0.0.1:9")),
        ("sendto flags", lambda: p.WSPSendTo(u, [b"x"], None, (LOCAL, 9))),
        ("recv read-only bytes", lambda: p.WSPRecv(a, [b"read-only"])),
        ("recv read-only view", lambda: p.WSPRecv(a, [memoryview(b"ro")])),
        ("recv single buffer", lambda: p.WSPRecv(a, bytearray(4))),
        ("recv flags", lambda: p.WSPRecv(a, [bytearray(4)], "0")),
        ("recv overlapped", lambda: p.WSPRecv(a, [bytearray(4)], 0, object())),
        ("recv routine", lambda: p.WSPRecv(a, [bytearray(4)], 0, Overlapped(), "routine")),
        ("recvfrom read-only", lambda: p.WSPRecvFrom(u, [b"ro"])),
        ("shutdown", lambda: p.WSPShutdown(c, None)),
        ("setsockopt", lambda: p.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, "1")),
        ("getsockopt", lambda: p.WSPGetSockOpt(c, SOL_SOCKET, "SO_SNDBUF")),
        ("ioctl", lambda: p.WSPIoctl(c, None)),
        ("eventselect", lambda: p.WSPEventSelect(c, ev, "FD_READ")),
        ("select sets", lambda: p.WSPSelect(5, [], [], 0)),
        ("select timeout", lambda: p.WSPSelect([c], [], [], "0")),
        ("getoverlappedresult", lambda: p.WSPGetOverlappedResult(c, "ov", False)),
        ("socket", lambda: p.WSPSocket(AF_INET, "SOCK_STREAM", 0)),
        ("stringtoaddress", lambda: p.WSPStringToAddress(b"1.2.3.4:5")),
        ("addresstostring", lambda: p.WSPAddressToString("1.2.3.4:5")),
    ]


def test_wrong_argument_types_are_type_errors_and_leave_nothing_behind(sim):
    calls = _type_error_calls(sim)
    sockets_before = sim.proc.resources()["sockets"]
    for label, call in calls:
        with pytest.raises(TypeError):
            call()
        res = sim.proc.resources()
        assert res["overlapped_pending"] == 0, label
        assert res["threads"] == 0, label
    # two sockets were made on purpose (for bind and connect)
    assert sim.proc.resources()["sockets"] == sockets_before + sim.entries(2)


# ------------------------------------- WSAENOTSOCK, before anything else
class OtherProvider(wsp.sim.Provider):
    """A second provider class (a distinct provider id) on the same process."""


def _entries(p, s):
    """Every socket entry of provider `p` on handle `s`, with bad arguments
    besides the handle wherever the entry takes any."""
    return {
        "WSPBind": lambda: p.WSPBind(s, "not an address"),
        "WSPListen": lambda: p.WSPListen(s, "5"),
        "WSPConnect": lambda: p.WSPConnect(s, ("999.0.0.1", 1)),
        "WSPAccept": lambda: p.WSPAccept(s, 42),
        "WSPSend": lambda: p.WSPSend(s, "text"),
        "WSPSendTo": lambda: p.WSPSendTo(s, [b"x"], 0, "nowhere"),
        "WSPRecv": lambda: p.WSPRecv(s, [b"read-only"]),
        "WSPRecvFrom": lambda: p.WSPRecvFrom(s, [bytearray(1)], "flags"),
        "WSPShutdown": lambda: p.WSPShutdown(s, 99),
        "WSPCloseSocket": lambda: p.WSPCloseSocket(s),
        "WSPGetSockName": lambda: p.WSPGetSockName(s),
        "WSPGetPeerName": lambda: p.WSPGetPeerName(s),
        "WSPSetSockOpt": lambda: p.WSPSetSockOpt(s, 0x1234, "opt", None),
        "WSPGetSockOpt": lambda: p.WSPGetSockOpt(s, "level", 0x7777),
        "WSPIoctl": lambda: p.WSPIoctl(s, 0xDEAD, "value"),
        "WSPEventSelect": lambda: p.WSPEventSelect(s, None, "mask"),
        "WSPEnumNetworkEvents": lambda: p.WSPEnumNetworkEvents(s, 987654),
        "WSPSelect": lambda: p.WSPSelect([s], [], [], "timeout"),
        "WSPGetOverlappedResult": lambda: p.WSPGetOverlappedResult(s, "ov", False),
        # (with disconnect data: see test_disconnect_data_does_not_hide_a_bad_handle)
        "WSPSendDisconnect": lambda: p.WSPSendDisconnect(s),
        "WSPRecvDisconnect": lambda: p.WSPRecvDisconnect(s),
    }


ENTRY_PARAMS = list(_entries(None, None))



def _bad_handle(sim, kind):
    if kind == "never issued":
        return 123456
    if kind == "closed":
        s = sim.socket()
        sim.prov.WSPCloseSocket(s)
        return s
    if kind == "event":
        return sim.event()
    if kind == "port":
        return sim.port()
    if kind == "invalid":
        return INVALID_SOCKET
    if kind == "zero":
        return 0
    if kind == "not an int":
        return "4"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["never issued", "closed", "event", "port", "invalid", "zero",
                                  "not an int"])
@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_bad_handle_is_enotsock_before_any_other_argument_error(sim, entry, kind):
    bad = _bad_handle(sim, kind)
    with pytest.raises(wsp.WinsockError) as e:
        _entries(sim.prov, bad)[entry]()
    assert_winsock(e, wsp.WSAENOTSOCK)


@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_bad_handle_is_enotsock_even_while_the_network_is_down(sim, entry):
    sim.net.set_down(True)
    with pytest.raises(wsp.WinsockError) as e:
        _entries(sim.prov, 123456)[entry]()
    assert_winsock(e, wsp.WSAENOTSOCK)


@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_handle_from_wpucreatesockethandle_of_someone_else_is_enotsock(sim, entry):
    foreign = sim.proc.upcalls.WPUCreateSocketHandle(7, {"not": "a sim socket"})
    try:
        with pytest.raises(wsp.WinsockError) as e:
            _entries(sim.prov, foreign)[entry]()
        assert_winsock(e, wsp.WSAENOTSOCK)
        assert sim.proc.upcalls.WPUQuerySocketHandleContext(foreign) == {"not": "a sim socket"}
    finally:
        sim.proc.upcalls.WPUCloseSocketHandle(foreign)


@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_socket_of_another_provider_on_the_same_process_is_enotsock(sim, entry):
    other = OtherProvider(sim.net)
    other.WSPStartup(0x0202, None, sim.proc.upcalls)
    try:
        theirs = other.WSPSocket(AF_INET, SOCK_STREAM, 0)
        with pytest.raises(wsp.WinsockError) as e:
            _entries(sim.prov, theirs)[entry]()
        assert_winsock(e, wsp.WSAENOTSOCK)
        # and the other way round
        mine = sim.socket()
        with pytest.raises(wsp.WinsockError) as e:
            other.WSPGetSockOpt(mine, SOL_SOCKET, SO_TYPE)
        assert_winsock(e, wsp.WSAENOTSOCK)
        assert other.WSPGetSockOpt(theirs, SOL_SOCKET, SO_TYPE) == SOCK_STREAM
        other.WSPCloseSocket(theirs)
    finally:
        other.WSPCleanup()


@pytest.mark.parametrize("entry", ["WSPSendDisconnect", "WSPRecvDisconnect"])
def test_disconnect_data_does_not_hide_a_bad_handle(sim, entry):
    with pytest.raises(wsp.WinsockError) as e:
        getattr(sim.prov, entry)(123456, b"data")
    assert_winsock(e, wsp.WSAENOTSOCK)


def test_disconnect_data_is_eopnotsupp(sim):
    c, a, _ = sim.pair()
    for entry in (sim.prov.WSPSendDisconnect, sim.prov.WSPRecvDisconnect):
        with pytest.raises(wsp.WinsockError) as e:
            entry(c, b"data")
        assert_winsock(e, wsp.WSAEOPNOTSUPP)
    sim.prov.WSPSendDisconnect(c)                  # without data: shutdown(SD_SEND)
    assert sim.prov.WSPRecv(a, [bytearray(1)]) == (0, 0, 0)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(c, [b"x"])
    assert_winsock(e, wsp.WSAESHUTDOWN)
    sim.prov.WSPRecvDisconnect(a)                  # shutdown(SD_RECEIVE)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(1)])
    assert_winsock(e, wsp.WSAESHUTDOWN)


def test_closed_handle_is_enotsock_and_a_second_close_too(sim):
    s = sim.socket()
    sim.prov.WSPCloseSocket(s)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPCloseSocket(s)
    assert_winsock(e, wsp.WSAENOTSOCK)
    assert e.value.funcname == "WSPCloseSocket"
    assert s not in sim.prov.sockets()


# ------------------------------------------------------------ network down
def _down_calls(sim):
    """Every entry, with valid arguments, on sockets made while the network was up."""
    c, a, lst = sim.pair()
    u = sim.socket(SOCK_DGRAM)
    sim.prov.WSPBind(u, (LOCAL, 0))
    fresh = sim.socket()
    ev = sim.event()
    p = sim.prov
    uaddr = p.WSPGetSockName(u)
    laddr = p.WSPGetSockName(lst)
    return {
        "WSPSocket": lambda: p.WSPSocket(AF_INET, SOCK_STREAM, 0),
        "WSPBind": lambda: p.WSPBind(fresh, (LOCAL, 0)),
        "WSPListen": lambda: p.WSPListen(lst, 5),
        "WSPConnect": lambda: p.WSPConnect(fresh, laddr),
        "WSPAccept": lambda: p.WSPAccept(lst),
        "WSPSend": lambda: p.WSPSend(c, [b"x"]),
        "WSPSendTo": lambda: p.WSPSendTo(u, [b"x"], 0, uaddr),
        "WSPRecv": lambda: p.WSPRecv(a, [bytearray(1)]),
        "WSPRecvFrom": lambda: p.WSPRecvFrom(u, [bytearray(1)]),
        "WSPShutdown": lambda: p.WSPShutdown(c, SD_SEND),
        "WSPCloseSocket": lambda: p.WSPCloseSocket(c),
        "WSPGetSockName": lambda: p.WSPGetSockName(c),
        "WSPGetPeerName": lambda: p.WSPGetPeerName(c),
        "WSPSetSockOpt": lambda: p.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 100),
        "WSPGetSockOpt": lambda: p.WSPGetSockOpt(c, SOL_SOCKET, SO_SNDBUF),
        "WSPIoctl": lambda: p.WSPIoctl(c, FIONREAD),
        "WSPEventSelect": lambda: p.WSPEventSelect(a, ev, FD_READ),
        "WSPEnumNetworkEvents": lambda: p.WSPEnumNetworkEvents(a),
        "WSPSelect": lambda: p.WSPSelect([a], [c], [], 0),
        "WSPSendDisconnect": lambda: p.WSPSendDisconnect(c),
        "WSPRecvDisconnect": lambda: p.WSPRecvDisconnect(a),
    }, (c, a, lst, u, fresh)


def test_network_down_fails_every_entry_with_enetdown_and_comes_back(sim):
    calls, (c, a, lst, u, fresh) = _down_calls(sim)
    sockets = sorted(sim.prov.sockets())
    sim.net.set_down(True)
    for name, call in calls.items():
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert e.value.winerror == wsp.WSAENETDOWN, name
        assert e.value.funcname == name
    # nothing changed while it was down
    assert sorted(sim.prov.sockets()) == sockets
    sim.net.set_down(False)
    assert sim.prov.WSPSend(c, [b"back up"]) == (0, 7)
    assert recv_all(sim.prov, a, 7) == b"back up"
    assert sim.prov.WSPGetSockOpt(c, SOL_SOCKET, SO_SNDBUF) == 65536
    sim.prov.WSPBind(fresh, (LOCAL, 0))
    sim.prov.WSPConnect(fresh, sim.prov.WSPGetSockName(lst))
    _, peer = sim.prov.WSPAccept(lst)
    assert peer == sim.prov.WSPGetSockName(fresh)
    s = sim.prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
    sim.prov.WSPCloseSocket(s)


@pytest.mark.parametrize("entry", ["WSPSendDisconnect", "WSPRecvDisconnect"])
def test_disconnect_errors_name_their_own_function(sim, entry):
    c, a, _ = sim.pair()
    sim.net.set_down(True)
    with pytest.raises(wsp.WinsockError) as e:
        getattr(sim.prov, entry)(c)
    assert_winsock(e, wsp.WSAENETDOWN)
    assert e.value.funcname == entry


def test_network_down_with_overlapped_arguments_starts_nothing(sim):
    c, a, _ = sim.pair()
    sim.net.set_down(True)
    ov = Overlapped()
    for call in (lambda: sim.prov.WSPRecv(a, [bytearray(4)], 0, ov),
                 lambda: sim.prov.WSPSend(c, [b"x"], 0, ov)):
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert_winsock(e, wsp.WSAENETDOWN)
    assert not ov.pending
    assert sim.proc.resources()["overlapped_pending"] == 0


# ---------------------------------------------------- WSANOTINITIALISED
def test_entries_before_startup_are_wsanotinitialised(layers):
    net = wsp.sim.Network()
    proc = wsp.Process()
    prov = stack(wsp.sim.Provider(net), layers)
    with pytest.raises(wsp.WinsockError) as e:
        prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
    assert_winsock(e, wsp.WSANOTINITIALISED)
    for name, call in _entries(prov, 4).items():
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert e.value.winerror == wsp.WSANOTINITIALISED, name
    with pytest.raises(wsp.WinsockError) as e:
        prov.WSPGetOverlappedResult(4, Overlapped(), False)
    assert_winsock(e, wsp.WSANOTINITIALISED)
    assert proc.resources() == dict.fromkeys(proc.resources(), 0)


def test_entries_after_the_final_cleanup_are_wsanotinitialised(layers):
    s = Sim(layers=layers)
    h = s.socket()
    s.prov.WSPCleanup()
    for call in (lambda: s.prov.WSPSocket(AF_INET, SOCK_STREAM, 0),
                 lambda: s.prov.WSPGetSockOpt(h, SOL_SOCKET, SO_TYPE),
                 lambda: s.prov.WSPSend(h, [b"x"])):
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert_winsock(e, wsp.WSANOTINITIALISED)
    s.close()


def test_provider_needs_a_network():
    with pytest.raises(TypeError):
        wsp.sim.Provider(None)


# ------------------------------------------------------ address strings
@pytest.mark.parametrize("addr, text", [(("1.2.3.4", 80), "1.2.3.4:80"),
                                        (("127.0.0.1", 65535), "127.0.0.1:65535"),
                                        (("10.0.0.1", 0), "10.0.0.1"),
                                        (("0.0.0.0", 0), "0.0.0.0"),
                                        (("255.255.255.255", 1), "255.255.255.255:1")])
def test_address_to_string_and_back(sim, addr, text):
    assert sim.prov.WSPAddressToString(addr) == text
    assert sim.prov.WSPStringToAddress(text) == addr
    assert sim.prov.WSPStringToAddress(text, AF_INET) == addr


@pytest.mark.parametrize("text", ["1.2.3", "1.2.3.4.5", "1.2.3.4:65536", "1.2.3.4:-1",
                                  "1.2.3.4:port", "host:80", "1.2.3.4:80:1", "", ":80",
                                  "256.1.1.1:1", "::1"])
def test_string_to_address_errors_are_einval(sim, text):
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPStringToAddress(text)
    assert_winsock(e, wsp.WSAEINVAL)


@pytest.mark.parametrize("addr", [("1.2.3.999", 1), ("1.2.3.4", 65536), ("nohost", 1)])
def test_address_to_string_of_a_bad_address_is_efault(sim, addr):
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPAddressToString(addr)
    assert_winsock(e, wsp.WSAEFAULT)


def test_address_string_argument_types(sim):
    for call in (lambda: sim.prov.WSPStringToAddress(None),
                 lambda: sim.prov.WSPStringToAddress("1.2.3.4", "AF_INET"),
                 lambda: sim.prov.WSPAddressToString(("1.2.3.4",)),
                 lambda: sim.prov.WSPAddressToString(("1.2.3.4", "80"))):
        with pytest.raises(TypeError):
            call()


# ------------------------------------------------------------ fault hooks
def test_connections_lists_live_connections(sim):
    assert sim.net.connections() == []
    c, a, _ = sim.pair()
    conns = sim.net.connections()
    assert len(conns) == 1
    assert conns[0].addresses == (sim.prov.WSPGetSockName(c), sim.prov.WSPGetSockName(a))
    c2, a2, _ = sim.pair()
    conns = sim.net.connections()
    assert [x.addresses for x in conns] == [
        (sim.prov.WSPGetSockName(c), sim.prov.WSPGetSockName(a)),
        (sim.prov.WSPGetSockName(c2), sim.prov.WSPGetSockName(a2))]
    conns[0].reset()
    assert [x.addresses for x in sim.net.connections()] == [
        (sim.prov.WSPGetSockName(c2), sim.prov.WSPGetSockName(a2))]


def test_reset_fails_both_sides_with_econnreset(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"unread"])
    ev = sim.event()
    ov = Overlapped(ev)
    assert sim.prov.WSPRecv(c, [bytearray(8)], 0, ov)[0] == wsp.WSA_IO_PENDING
    sim.net.connections()[0].reset()
    # the pending receive completed with the reset, through its event
    assert sim.signalled(ev)
    assert ov.Internal == wsp.WSAECONNRESET
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetOverlappedResult(c, ov, False)
    assert_winsock(e, wsp.WSAECONNRESET)
    for s in (c, a):
        for call in (lambda s=s: sim.prov.WSPRecv(s, [bytearray(8)]),
                     lambda s=s: sim.prov.WSPSend(s, [b"x"])):
            with pytest.raises(wsp.WinsockError) as e:
                call()
            assert_winsock(e, wsp.WSAECONNRESET)
            assert isinstance(e.value, ConnectionResetError)
    assert sim.net.connections() == []


def test_operations_started_after_a_reset_raise_and_deliver_nothing(sim):
    c, a, _ = sim.pair()
    sim.net.connections()[0].reset()
    ev = sim.event()
    calls = []
    for call in (lambda ov: sim.prov.WSPRecv(a, [bytearray(4)], 0, ov),
                 lambda ov: sim.prov.WSPSend(a, [b"x"], 0, ov),
                 lambda ov: sim.prov.WSPRecv(a, [bytearray(4)], 0, ov,
                                             lambda *args: calls.append(args))):
        ov = Overlapped(ev)
        with pytest.raises(wsp.WinsockError) as e:
            call(ov)
        assert_winsock(e, wsp.WSAECONNRESET)
        assert not ov.pending
    assert not sim.signalled(ev)
    assert sim.proc.SleepEx(0, True) == 0 and calls == []
    assert sim.proc.resources()["overlapped_pending"] == 0


def test_reset_wakes_a_blocked_receiver_and_a_blocked_sender(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 4)
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 4)
    receiver = Worker(sim.prov.WSPRecv, c, [bytearray(8)])
    sender = Worker(sim.prov.WSPSend, c, [bytes(100)])
    receiver.start()
    sender.start()
    wait_blocked(sim_socket(sim.proc, c), 2)      # both wait on c
    assert receiver.is_alive() and sender.is_alive()
    sim.net.connections()[0].reset()
    for w in (receiver, sender):
        with pytest.raises(wsp.WinsockError) as e:
            w.finish(5)
        assert_winsock(e, wsp.WSAECONNRESET)


def test_hold_delays_and_release_delivers_in_order(sim):
    c, a, _ = sim.pair()
    conn = sim.net.connections()[0]
    conn.hold()
    assert sim.prov.WSPSend(c, [b"abc"]) == (0, 3)           # waits in the send buffer
    assert sim.prov.WSPSend(c, [b"def"]) == (0, 3)
    assert sim.prov.WSPSend(a, [b"back"]) == (0, 4)          # both directions wait
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0
    assert sim.prov.WSPIoctl(c, FIONREAD) == 0
    assert sim.prov.WSPSelect([a, c], [], [], 0) == ([], [], [])
    ov = Overlapped()
    buf = bytearray(4)
    assert sim.prov.WSPRecv(a, [buf], 0, ov)[0] == wsp.WSA_IO_PENDING
    assert ov.pending
    conn.release()
    assert not ov.pending and bytes(buf) == b"abcd"          # the posted receive first
    assert sim.prov.WSPIoctl(a, FIONREAD) == 2
    assert recv_all(sim.prov, a, 2) == b"ef"
    assert recv_all(sim.prov, c, 4) == b"back"
    assert sim.prov.WSPSend(c, [b"after"]) == (0, 5)         # not held any more
    assert sim.prov.WSPIoctl(a, FIONREAD) == 5


def test_hold_with_a_full_send_buffer_keeps_an_overlapped_send_pending(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 8)
    conn = sim.net.connections()[0]
    conn.hold()
    ov = Overlapped()
    payload = bytes(range(20))
    assert sim.prov.WSPSend(c, [payload], 0, ov) == (wsp.WSA_IO_PENDING, 0)
    conn.release()
    assert sim.prov.WSPGetOverlappedResult(c, ov, False) == (20, 0)
    assert recv_all(sim.prov, a, 20) == payload


def test_graceful_close_waits_for_a_held_connection(sim):
    c, a, _ = sim.pair()
    conn = sim.net.connections()[0]
    conn.hold()
    sim.prov.WSPSend(c, [b"held"])
    sim.prov.WSPShutdown(c, SD_SEND)
    sim.prov.WSPIoctl(a, FIONBIO, 1)
    with pytest.raises(wsp.WinsockError) as e:               # no data, no EOF yet
        sim.prov.WSPRecv(a, [bytearray(8)])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)
    conn.release()
    assert recv_all(sim.prov, a, 4) == b"held"
    assert sim.prov.WSPRecv(a, [bytearray(8)]) == (0, 0, 0)


def test_drop_loses_the_next_n_bytes(sim):
    c, a, _ = sim.pair()
    sim.net.connections()[0].drop(3)
    assert sim.prov.WSPSend(c, [b"abcdefgh"]) == (0, 8)
    assert sim.prov.WSPIoctl(a, FIONREAD) == 5
    assert recv_all(sim.prov, a, 5) == b"defgh"
    sim.prov.WSPSend(c, [b"intact"])
    assert recv_all(sim.prov, a, 6) == b"intact"


def test_drop_counts_across_sends_and_directions(sim):
    c, a, _ = sim.pair()
    sim.net.connections()[0].drop(4)
    assert sim.prov.WSPSend(c, [b"ab"]) == (0, 2)            # lost entirely
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0
    assert sim.prov.WSPSend(a, [b"cdefg"]) == (0, 5)         # loses "cd"
    assert recv_all(sim.prov, c, 3) == b"efg"
    assert sim.prov.WSPSend(c, [b"whole"]) == (0, 5)
    assert recv_all(sim.prov, a, 5) == b"whole"


def test_drop_into_a_posted_receive(sim):
    c, a, _ = sim.pair()
    ov = Overlapped()
    buf = bytearray(8)
    assert sim.prov.WSPRecv(a, [buf], 0, ov)[0] == wsp.WSA_IO_PENDING
    sim.net.connections()[0].drop(2)
    sim.prov.WSPSend(c, [b"xxdata"])
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (4, 0)
    assert bytes(buf[:4]) == b"data"


def test_fault_hooks_are_deterministic(layers):
    def run():
        s = Sim(seed=5, layers=layers)
        try:
            c, a, _ = s.pair()
            conn = s.net.connections()[0]
            conn.drop(7)
            conn.hold()
            for i in range(10):
                s.prov.WSPSend(c, [bytes([65 + i]) * (i + 1)])
            conn.release()
            n = s.prov.WSPIoctl(a, FIONREAD)
            return recv_all(s.prov, a, n)
        finally:
            s.close()

    first = run()
    assert first == run()
    assert len(first) == 55 - 7
    assert first.startswith(b"DDDEEEEE")          # A, BB, CCC and one D were dropped
