"""Tests for wsp.constants: every value must be the Windows one."""

from __future__ import annotations

import uuid

import socket

import pytest

from wsp import constants

# Values as winsock2.h / ws2def.h / ws2spi.h define them on 64-bit Windows,
# written out literally so a wrong constant fails here.
EXPECTED = {
    "AF_UNSPEC": 0,
    "AF_INET": 2,
    "AF_INET6": 23,
    "SOCK_STREAM": 1,
    "SOCK_DGRAM": 2,
    "SOCK_RAW": 3,
    "IPPROTO_IP": 0,
    "IPPROTO_TCP": 6,
    "IPPROTO_UDP": 17,
    "SOL_SOCKET": 0xFFFF,
    "SO_DEBUG": 0x0001,
    "SO_ACCEPTCONN": 0x0002,
    "SO_REUSEADDR": 0x0004,
    "SO_KEEPALIVE": 0x0008,
    "SO_DONTROUTE": 0x0010,
    "SO_BROADCAST": 0x0020,
    "SO_LINGER": 0x0080,
    "SO_OOBINLINE": 0x0100,
    "SO_DONTLINGER": -129,
    "SO_EXCLUSIVEADDRUSE": -5,
    "SO_SNDBUF": 0x1001,
    "SO_RCVBUF": 0x1002,
    "SO_SNDLOWAT": 0x1003,
    "SO_RCVLOWAT": 0x1004,
    "SO_SNDTIMEO": 0x1005,
    "SO_RCVTIMEO": 0x1006,
    "SO_ERROR": 0x1007,
    "SO_TYPE": 0x1008,
    "SO_CONDITIONAL_ACCEPT": 0x3002,
    "TCP_NODELAY": 0x0001,
    "SOMAXCONN": 0x7FFFFFFF,
    "FIONBIO": 0x8004667E,
    "FIONREAD": 0x4004667F,
    "SIOCATMARK": 0x40047307,
    # mswsock.h (SPEC §6.4)
    "SIO_GET_EXTENSION_FUNCTION_POINTER": 0xC8000006,
    "SO_UPDATE_ACCEPT_CONTEXT": 0x700B,
    "SO_UPDATE_CONNECT_CONTEXT": 0x7010,
    "TF_REUSE_SOCKET": 0x02,
    "WSAID_ACCEPTEX": uuid.UUID("b5367df1-cbac-11cf-95ca-00805f48a192"),
    "WSAID_GETACCEPTEXSOCKADDRS": uuid.UUID("b5367df2-cbac-11cf-95ca-00805f48a192"),
    "WSAID_CONNECTEX": uuid.UUID("25a207b9-ddf3-4660-8ee9-76e58c74063e"),
    "WSAID_DISCONNECTEX": uuid.UUID("7fda2e11-8630-436f-a031-f536a6eec157"),
    "SD_RECEIVE": 0,
    "SD_SEND": 1,
    "SD_BOTH": 2,
    "CF_ACCEPT": 0,
    "CF_REJECT": 1,
    "CF_DEFER": 2,
    "WSA_FLAG_OVERLAPPED": 0x01,
    "MSG_OOB": 0x1,
    "MSG_PEEK": 0x2,
    "MSG_DONTROUTE": 0x4,
    "MSG_WAITALL": 0x8,
    "MSG_PARTIAL": 0x8000,
    "FD_READ_BIT": 0,
    "FD_WRITE_BIT": 1,
    "FD_OOB_BIT": 2,
    "FD_ACCEPT_BIT": 3,
    "FD_CONNECT_BIT": 4,
    "FD_CLOSE_BIT": 5,
    "FD_QOS_BIT": 6,
    "FD_GROUP_QOS_BIT": 7,
    "FD_ROUTING_INTERFACE_CHANGE_BIT": 8,
    "FD_ADDRESS_LIST_CHANGE_BIT": 9,
    "FD_MAX_EVENTS": 10,
    "FD_READ": 0x01,
    "FD_WRITE": 0x02,
    "FD_OOB": 0x04,
    "FD_ACCEPT": 0x08,
    "FD_CONNECT": 0x10,
    "FD_CLOSE": 0x20,
    "FD_QOS": 0x40,
    "FD_GROUP_QOS": 0x80,
    "FD_ROUTING_INTERFACE_CHANGE": 0x100,
    "FD_ADDRESS_LIST_CHANGE": 0x200,
    "FD_ALL_EVENTS": 0x3FF,
    "INVALID_SOCKET": 18446744073709551615,
    "WSA_MAXIMUM_WAIT_EVENTS": 64,
    "WSADESCRIPTION_LEN": 256,
    "WSASYS_STATUS_LEN": 128,
    "WSAPROTOCOL_LEN": 255,
    "WINSOCK_VERSION": 0x0202,
    "LAYERED_PROTOCOL": 0,
    "BASE_PROTOCOL": 1,
    "MAX_PROTOCOL_CHAIN": 7,
}


@pytest.mark.parametrize(("name", "value"), list(EXPECTED.items()), ids=list(EXPECTED))
def test_value(name: str, value: int) -> None:
    actual = getattr(constants, name)
    assert type(actual) is type(value)        # ints, and the extension GUIDs as uuid.UUID
    assert actual == value


def test_all_matches_expected_table() -> None:
    # Every exported name is checked above, and nothing checked is unexported.
    assert sorted(constants.__all__) == sorted(EXPECTED)
    assert len(set(constants.__all__)) == len(constants.__all__)


def test_dontlinger_is_complement_of_linger() -> None:
    assert constants.SO_DONTLINGER == -129
    assert constants.SO_DONTLINGER == ~constants.SO_LINGER
    assert constants.SO_EXCLUSIVEADDRUSE == ~constants.SO_REUSEADDR


def test_invalid_socket_is_all_ones_64_bit() -> None:
    assert constants.INVALID_SOCKET == 2**64 - 1
    assert constants.INVALID_SOCKET == 0xFFFF_FFFF_FFFF_FFFF


def test_event_masks_match_bits() -> None:
    for event in (
        "READ",
        "WRITE",
        "OOB",
        "ACCEPT",
        "CONNECT",
        "CLOSE",
        "QOS",
        "GROUP_QOS",
        "ROUTING_INTERFACE_CHANGE",
        "ADDRESS_LIST_CHANGE",
    ):
        bit = getattr(constants, f"FD_{event}_BIT")
        assert getattr(constants, f"FD_{event}") == 1 << bit
    assert constants.FD_ALL_EVENTS == (1 << constants.FD_MAX_EVENTS) - 1


def test_winsock_version_is_makeword_2_2() -> None:
    major = constants.WINSOCK_VERSION & 0xFF
    minor = constants.WINSOCK_VERSION >> 8
    assert (major, minor) == (2, 2)


@pytest.mark.skipif(
    socket.AF_INET6 == 23, reason="host AF_INET6 happens to equal Windows'"
)
def test_values_are_not_the_hosts() -> None:
    # Guard against `from socket import *` sneaking host values in.
    assert constants.AF_INET6 != socket.AF_INET6
