"""Windows Sockets constants with their Windows values.

These are the numbers from the Windows SDK headers (winsock2.h, ws2def.h,
ws2spi.h), never the host's: ``AF_INET6`` is 23 here even on Linux, where the
:mod:`socket` module says 10.  Providers and callers exchange these values
exactly as a Windows program would, so code written against wsp behaves the
same on every operating system.
"""

from __future__ import annotations

import uuid

# --- address families ----------------------------------------------------
AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 23

# --- socket types ----------------------------------------------------------
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3

# --- protocols ---------------------------------------------------------------
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17

# --- socket options (level SOL_SOCKET) ---------------------------------------
SOL_SOCKET = 0xFFFF
SO_DEBUG = 0x0001
SO_ACCEPTCONN = 0x0002
SO_REUSEADDR = 0x0004
SO_KEEPALIVE = 0x0008
SO_DONTROUTE = 0x0010
SO_BROADCAST = 0x0020
SO_LINGER = 0x0080
SO_OOBINLINE = 0x0100
SO_SNDBUF = 0x1001
SO_RCVBUF = 0x1002
SO_SNDLOWAT = 0x1003
SO_RCVLOWAT = 0x1004
SO_SNDTIMEO = 0x1005
SO_RCVTIMEO = 0x1006
SO_ERROR = 0x1007
SO_TYPE = 0x1008
SO_CONDITIONAL_ACCEPT = 0x3002
# Windows defines these two as the bitwise complement of another option, and
# the SPI passes them as a signed int, so they are negative here as well.
SO_DONTLINGER = ~SO_LINGER  # -129
SO_EXCLUSIVEADDRUSE = ~SO_REUSEADDR  # -5

# --- TCP options (level IPPROTO_TCP) -----------------------------------------
TCP_NODELAY = 0x0001

# Backlog value meaning "as large as the provider allows".
SOMAXCONN = 0x7FFFFFFF

# --- ioctl commands ----------------------------------------------------------
# Built like the BSD _IOW/_IOR macros over a 4-byte u_long argument, so the
# direction bits make them large unsigned numbers.
FIONBIO = 0x8004667E
FIONREAD = 0x4004667F
SIOCATMARK = 0x40047307

# --- Microsoft extension functions (mswsock.h) -------------------------------
# WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, guid) hands out the
# provider's function for one of these GUIDs.
SIO_GET_EXTENSION_FUNCTION_POINTER = 0xC8000006
WSAID_ACCEPTEX = uuid.UUID("b5367df1-cbac-11cf-95ca-00805f48a192")
WSAID_GETACCEPTEXSOCKADDRS = uuid.UUID("b5367df2-cbac-11cf-95ca-00805f48a192")
WSAID_CONNECTEX = uuid.UUID("25a207b9-ddf3-4660-8ee9-76e58c74063e")
WSAID_DISCONNECTEX = uuid.UUID("7fda2e11-8630-436f-a031-f536a6eec157")
SO_UPDATE_ACCEPT_CONTEXT = 0x700B
SO_UPDATE_CONNECT_CONTEXT = 0x7010
TF_REUSE_SOCKET = 0x02

# --- shutdown directions -----------------------------------------------------
SD_RECEIVE = 0
SD_SEND = 1
SD_BOTH = 2

# --- conditional accept callback results ------------------------------------
CF_ACCEPT = 0
CF_REJECT = 1
CF_DEFER = 2

# --- WSPSocket dwFlags -------------------------------------------------------
WSA_FLAG_OVERLAPPED = 0x01

# --- send/receive flags ------------------------------------------------------
MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_DONTROUTE = 0x4
MSG_WAITALL = 0x8
# Set by the provider on a message-oriented receive that returned only part
# of the message.
MSG_PARTIAL = 0x8000

# --- network events (WSPEventSelect / WSPEnumNetworkEvents) -----------------
# Each event has a bit number, used to index the per-event error array, and a
# mask, 1 << bit, used in lNetworkEvents.
FD_READ_BIT = 0
FD_WRITE_BIT = 1
FD_OOB_BIT = 2
FD_ACCEPT_BIT = 3
FD_CONNECT_BIT = 4
FD_CLOSE_BIT = 5
FD_QOS_BIT = 6
FD_GROUP_QOS_BIT = 7
FD_ROUTING_INTERFACE_CHANGE_BIT = 8
FD_ADDRESS_LIST_CHANGE_BIT = 9
FD_MAX_EVENTS = 10

FD_READ = 1 << FD_READ_BIT  # 0x01
FD_WRITE = 1 << FD_WRITE_BIT  # 0x02
FD_OOB = 1 << FD_OOB_BIT  # 0x04
FD_ACCEPT = 1 << FD_ACCEPT_BIT  # 0x08
FD_CONNECT = 1 << FD_CONNECT_BIT  # 0x10
FD_CLOSE = 1 << FD_CLOSE_BIT  # 0x20
FD_QOS = 1 << FD_QOS_BIT  # 0x40
FD_GROUP_QOS = 1 << FD_GROUP_QOS_BIT  # 0x80
FD_ROUTING_INTERFACE_CHANGE = 1 << FD_ROUTING_INTERFACE_CHANGE_BIT  # 0x100
FD_ADDRESS_LIST_CHANGE = 1 << FD_ADDRESS_LIST_CHANGE_BIT  # 0x200
FD_ALL_EVENTS = (1 << FD_MAX_EVENTS) - 1  # 0x3FF

# --- handles and limits ------------------------------------------------------
# SOCKET is an unsigned pointer-sized integer and INVALID_SOCKET is all ones;
# wsp follows 64-bit Windows.
INVALID_SOCKET = 2**64 - 1
WSA_MAXIMUM_WAIT_EVENTS = 64
WSADESCRIPTION_LEN = 256
WSASYS_STATUS_LEN = 128
WSAPROTOCOL_LEN = 255
# MAKEWORD(2, 2): major version in the low byte, minor in the high byte.
WINSOCK_VERSION = 0x0202

# --- protocol chains (WSAPROTOCOL_INFOW.ProtocolChain) ----------------------
LAYERED_PROTOCOL = 0
BASE_PROTOCOL = 1
MAX_PROTOCOL_CHAIN = 7

__all__ = [
    "AF_INET",
    "AF_INET6",
    "AF_UNSPEC",
    "BASE_PROTOCOL",
    "CF_ACCEPT",
    "CF_DEFER",
    "CF_REJECT",
    "FD_ACCEPT",
    "FD_ACCEPT_BIT",
    "FD_ADDRESS_LIST_CHANGE",
    "FD_ADDRESS_LIST_CHANGE_BIT",
    "FD_ALL_EVENTS",
    "FD_CLOSE",
    "FD_CLOSE_BIT",
    "FD_CONNECT",
    "FD_CONNECT_BIT",
    "FD_GROUP_QOS",
    "FD_GROUP_QOS_BIT",
    "FD_MAX_EVENTS",
    "FD_OOB",
    "FD_OOB_BIT",
    "FD_QOS",
    "FD_QOS_BIT",
    "FD_READ",
    "FD_READ_BIT",
    "FD_ROUTING_INTERFACE_CHANGE",
    "FD_ROUTING_INTERFACE_CHANGE_BIT",
    "FD_WRITE",
    "FD_WRITE_BIT",
    "FIONBIO",
    "FIONREAD",
    "INVALID_SOCKET",
    "IPPROTO_IP",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "LAYERED_PROTOCOL",
    "MAX_PROTOCOL_CHAIN",
    "MSG_DONTROUTE",
    "MSG_OOB",
    "MSG_PARTIAL",
    "MSG_PEEK",
    "MSG_WAITALL",
    "SD_BOTH",
    "SD_RECEIVE",
    "SD_SEND",
    "SIOCATMARK",
    "SIO_GET_EXTENSION_FUNCTION_POINTER",
    "SO_UPDATE_ACCEPT_CONTEXT",
    "SO_UPDATE_CONNECT_CONTEXT",
    "TF_REUSE_SOCKET",
    "WSAID_ACCEPTEX",
    "WSAID_CONNECTEX",
    "WSAID_DISCONNECTEX",
    "WSAID_GETACCEPTEXSOCKADDRS",
    "SOCK_DGRAM",
    "SOCK_RAW",
    "SOCK_STREAM",
    "SOL_SOCKET",
    "SOMAXCONN",
    "SO_ACCEPTCONN",
    "SO_BROADCAST",
    "SO_CONDITIONAL_ACCEPT",
    "SO_DEBUG",
    "SO_DONTLINGER",
    "SO_DONTROUTE",
    "SO_ERROR",
    "SO_EXCLUSIVEADDRUSE",
    "SO_KEEPALIVE",
    "SO_LINGER",
    "SO_OOBINLINE",
    "SO_RCVBUF",
    "SO_RCVLOWAT",
    "SO_RCVTIMEO",
    "SO_REUSEADDR",
    "SO_SNDBUF",
    "SO_SNDLOWAT",
    "SO_SNDTIMEO",
    "SO_TYPE",
    "TCP_NODELAY",
    "WINSOCK_VERSION",
    "WSADESCRIPTION_LEN",
    "WSAPROTOCOL_LEN",
    "WSASYS_STATUS_LEN",
    "WSA_FLAG_OVERLAPPED",
    "WSA_MAXIMUM_WAIT_EVENTS",
]
