"""Layered service providers (``docs/guide/layers.rst``): ``LayeredProvider``, the base class
of non-IFS layers, the protocol catalog types that stack them, the fault and
tracing layers, and the summary of a trace."""
from ..spi.catalog import Catalog, ProtocolChain, ProtocolInfo
from .layered import LayeredProvider, LayerSocket
from .fault import FaultProvider
from .rules import Action, Call, Rule
from .trace import TraceRecord, TracingProvider
from .summary import SocketSummary, TraceFormatError, TraceSummary, summarize

__all__ = ["Catalog", "LayerSocket", "LayeredProvider", "ProtocolChain", "ProtocolInfo",
           "Action", "Call", "FaultProvider", "Rule", "TraceRecord", "TracingProvider",
           "SocketSummary", "TraceFormatError", "TraceSummary", "summarize"]
