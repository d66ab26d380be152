"""The simulated network (``docs/guide/network.rst``): ``Network`` -- an in-memory fabric of
TCP-like and UDP-like endpoints shared by any number of processes, with
fault switches and packet capture (``Capture``) -- and ``Provider``, the base service provider over it."""
from .capture import Capture
from .network import Connection, Network
from .provider import Provider

__all__ = ["Capture", "Connection", "Network", "Provider"]
