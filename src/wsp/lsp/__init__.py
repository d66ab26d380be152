"""Layered service providers (SPEC §8): ``LayeredProvider``, the base class
of non-IFS layers, and the protocol catalog types that stack them."""
from ..spi.catalog import Catalog, ProtocolChain, ProtocolInfo
from .layered import LayeredProvider, LayerSocket
from .fault import FaultProvider
from .rules import Action, Call, Rule
from .trace import TraceRecord, TracingProvider

__all__ = ["Catalog", "LayerSocket", "LayeredProvider", "ProtocolChain", "ProtocolInfo",
           "Action", "Call", "FaultProvider", "Rule", "TraceRecord", "TracingProvider"]
