"""The SPI layer: the role of ws2_32.dll for one process (``Process`` and its
``UpcallTable``), the ``ServiceProvider`` base class, and the SPI's
structures (``Overlapped``, ``ThreadId``, ``Linger``, ``WSPData``)."""
from .process import Operation, Process
from .provider import WINSOCK_2_2, WSPPROC_TABLE, ServiceProvider
from .structs import Linger, Overlapped, ThreadId, WSPData
from .upcalls import UpcallTable

__all__ = ["Linger", "Operation", "Overlapped", "Process", "ServiceProvider", "ThreadId",
           "UpcallTable", "WINSOCK_2_2", "WSPData", "WSPPROC_TABLE"]
