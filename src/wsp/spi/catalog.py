"""The protocol catalog of one Process: which provider serves which
(address family, socket type, protocol), and the protocol chains that stack
layered providers over base providers (``docs/guide/layers.rst``, WSAPROTOCOL_INFO).

Three kinds of entry, told apart by ``ProtocolChain.ChainLen`` as in Winsock:

* ``LAYERED_PROTOCOL`` (0): a layered provider on its own.  Never chosen by
  ``WSASocket``; it exists so that chains can name it.
* ``BASE_PROTOCOL`` (1): a base provider for one (family, type, protocol).
* a chain (2 .. ``MAX_PROTOCOL_CHAIN``): ``ChainEntries`` lists catalog ids,
  top layer first and a base entry last.  Its family, type and protocol are
  the base entry's; ``WSASocket`` through it reaches the top layer.

Entries are kept in catalog order.  ``find`` returns the first non-layered
entry that matches, and ``install_chain`` puts chains in front of the base
entries by default, as an LSP installer reorders the Windows catalog, so
that applications get the layered stack without asking for it.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any, Iterable

from ..constants import BASE_PROTOCOL, LAYERED_PROTOCOL, MAX_PROTOCOL_CHAIN
from ..errors import (WSAEAFNOSUPPORT, WSAEINVAL, WSAEPROTONOSUPPORT, WSAESOCKTNOSUPPORT,
                      WinsockError)
from .checks import int_arg
from .provider import ServiceProvider

__all__ = ["Catalog", "ProtocolChain", "ProtocolInfo", "FIRST_CATALOG_ENTRY_ID"]

#: Windows numbers catalog entries from 1001 up; so does wsp.
FIRST_CATALOG_ENTRY_ID = 1001


class ProtocolChain:
    """WSAPROTOCOLCHAIN: ``ChainLen`` and ``ChainEntries`` (catalog ids, top
    layer first)."""

    __slots__ = ("ChainLen", "ChainEntries")

    def __init__(self, ChainLen: int, ChainEntries: Iterable[int] = ()) -> None:  # noqa: N803
        self.ChainLen = ChainLen
        self.ChainEntries = tuple(ChainEntries)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ProtocolChain) and self.ChainLen == other.ChainLen
                and self.ChainEntries == other.ChainEntries)

    def __hash__(self) -> int:
        return hash((self.ChainLen, self.ChainEntries))

    def __repr__(self) -> str:
        return f"ProtocolChain(ChainLen={self.ChainLen}, ChainEntries={self.ChainEntries})"


class ProtocolInfo:
    """The WSAPROTOCOL_INFO fields wsp uses.  ``provider`` is the provider
    object that serves the entry: for a chain, its top layer."""

    __slots__ = ("dwCatalogEntryId", "ProtocolChain", "iAddressFamily", "iSocketType",
                 "iProtocol", "szProtocol", "ProviderId", "provider")

    def __init__(self, dwCatalogEntryId: int, ProtocolChain: ProtocolChain,  # noqa: N803
                 iAddressFamily: int, iSocketType: int, iProtocol: int,  # noqa: N803
                 szProtocol: str, provider: Any) -> None:  # noqa: N803
        self.dwCatalogEntryId = dwCatalogEntryId
        self.ProtocolChain = ProtocolChain
        self.iAddressFamily = iAddressFamily
        self.iSocketType = iSocketType
        self.iProtocol = iProtocol
        self.szProtocol = szProtocol
        self.ProviderId = provider.provider_id
        self.provider = provider

    @property
    def layered(self) -> bool:
        """A layered entry (ChainLen 0): never chosen for a socket."""
        return self.ProtocolChain.ChainLen == LAYERED_PROTOCOL

    def __repr__(self) -> str:
        return (f"<ProtocolInfo {self.dwCatalogEntryId} {self.szProtocol!r} "
                f"chain={self.ProtocolChain.ChainLen}:{list(self.ProtocolChain.ChainEntries)} "
                f"af={self.iAddressFamily} type={self.iSocketType} proto={self.iProtocol}>")


class Catalog:
    """The catalog of one Process.  Thread-safe; installs and removals take
    effect for sockets created afterwards (open sockets keep their stack)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[ProtocolInfo] = []
        self._ids = itertools.count(FIRST_CATALOG_ENTRY_ID)
        # Removed entries' providers, by id: sockets opened through an entry
        # keep their stack after it is removed (ids are never reused).
        self._retired: dict[int, Any] = {}
        # route()'s answers: an id's provider never changes (ids are never
        # reused, an entry's provider is fixed, removal retires the same
        # provider), so every application call can read it without the lock.
        self._routes: dict[int, Any] = {}

    # -- installing ---------------------------------------------------------------
    def install_base(self, provider: Any, af: int, type: int, protocol: int,  # noqa: A002
                     name: str | None = None) -> ProtocolInfo:
        """Add a base entry (ChainLen 1) for `provider`, after the others.
        The provider's ``catalog_entry_id`` becomes this entry's id if it
        has no catalog entry yet (its socket handles carry it)."""
        _check_provider(provider)
        for value, what in ((af, "af"), (type, "type"), (protocol, "protocol")):
            int_arg(value, what, bool_ok=False)
        with self._lock:
            entry_id = next(self._ids)
            info = ProtocolInfo(entry_id, ProtocolChain(BASE_PROTOCOL, (entry_id,)), af, type,
                                protocol, name or provider.description, provider)
            self._entries.append(info)
            self._adopt_id(provider, entry_id)
        return info

    def install_layer(self, provider: Any, name: str | None = None) -> ProtocolInfo:
        """Add a layered entry (ChainLen 0) for a layered provider."""
        _check_provider(provider)
        with self._lock:
            entry_id = next(self._ids)
            info = ProtocolInfo(entry_id, ProtocolChain(LAYERED_PROTOCOL, (entry_id,)), 0, 0, 0,
                                name or provider.description, provider)
            self._entries.append(info)
            self._adopt_id(provider, entry_id)
        return info

    def install_chain(self, entry_ids: Iterable[int], name: str | None = None,
                      first: bool = True) -> ProtocolInfo:
        """Add a protocol chain: `entry_ids` are catalog ids, top layer first,
        a base entry last, the layers layered entries (WSAEINVAL otherwise,
        or for a chain shorter than 2 or longer than MAX_PROTOCOL_CHAIN).
        `first`: put it ahead of every other entry (the default, so that
        WSASocket picks it), else after them."""
        ids = tuple(entry_ids)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise TypeError("entry_ids must be catalog entry ids (ints)")
        if not 2 <= len(ids) <= MAX_PROTOCOL_CHAIN:
            raise WinsockError(WSAEINVAL, "install_chain")
        with self._lock:
            infos = [self._get(i) for i in ids]
            if (any(info is None for info in infos)
                    or any(not info.layered for info in infos[:-1])
                    or infos[-1].ProtocolChain.ChainLen != BASE_PROTOCOL):
                raise WinsockError(WSAEINVAL, "install_chain")
            base = infos[-1]
            top = infos[0].provider
            entry_id = next(self._ids)
            label = name or " over ".join(info.szProtocol for info in infos)
            info = ProtocolInfo(entry_id, ProtocolChain(len(ids), ids), base.iAddressFamily,
                                base.iSocketType, base.iProtocol, label, top)
            if first:
                self._entries.insert(0, info)
            else:
                self._entries.append(info)
        return info

    def install(self, provider: Any, first: bool = True) -> list[ProtocolInfo]:
        """Install `provider` with everything under it, in one call.

        A base provider gets one base entry per ``provider.protocols``
        triple.  A layered provider (anything with a ``lower``) gets a
        layered entry for itself and for each layer below it, base entries
        for the provider at the bottom (unless it has some already), and one
        chain per base entry of the bottom provider.  Returns the entries a
        socket can be created through (the chains, or the base entries)."""
        _check_provider(provider)
        stack = [provider]
        while getattr(stack[-1], "lower", None) is not None:
            stack.append(stack[-1].lower)
        base = stack[-1]
        bases = [info for info in self.entries() if info.provider is base
                 and info.ProtocolChain.ChainLen == BASE_PROTOCOL]
        if not bases:
            protocols = getattr(base, "protocols", ())
            if not protocols:
                raise WinsockError(WSAEINVAL, "install")   # nothing it could serve
            bases = [self.install_base(base, *triple) for triple in protocols]
        if len(stack) == 1:
            return bases
        layer_ids = []
        for layer in stack[:-1]:
            mine = [info for info in self.entries() if info.provider is layer and info.layered]
            layer_ids.append((mine[0] if mine else self.install_layer(layer)).dwCatalogEntryId)
        # Chains go in front one by one: install them last-first so that
        # they end up in the bottom provider's order (stream before datagram).
        chains = [self.install_chain(layer_ids + [b.dwCatalogEntryId], first=first)
                  for b in (reversed(bases) if first else bases)]
        return chains[::-1] if first else chains

    def remove(self, entry_id: int) -> None:
        """Remove an entry.  WSAEINVAL for an unknown id, or for an entry a
        remaining chain names (remove the chain first)."""
        int_arg(entry_id, "entry_id", bool_ok=False)
        with self._lock:
            info = self._get(entry_id)
            if info is None:
                raise WinsockError(WSAEINVAL, "remove")
            for other in self._entries:
                if (other is not info and other.ProtocolChain.ChainLen > BASE_PROTOCOL
                        and entry_id in other.ProtocolChain.ChainEntries):
                    raise WinsockError(WSAEINVAL, "remove")
            self._entries.remove(info)
            self._retired[entry_id] = info.provider

    # -- looking up -----------------------------------------------------------------
    def entries(self) -> list[ProtocolInfo]:
        """Every entry, in catalog order (WSCEnumProtocols)."""
        with self._lock:
            return list(self._entries)

    def get(self, entry_id: int) -> ProtocolInfo | None:
        """The catalog entry with id `entry_id` (a :class:`ProtocolInfo`), or None."""
        with self._lock:
            return self._get(entry_id)

    def provider_of(self, entry_id: int) -> Any:
        """The provider serving catalog id `entry_id` (None if unknown)."""
        with self._lock:
            info = self._get(entry_id)
        return None if info is None else info.provider

    def route(self, entry_id: int) -> Any:
        """The provider that serves sockets created under catalog id
        `entry_id`: :meth:`provider_of`, and after the entry was removed the
        provider it had (open sockets keep their stack); None if never known."""
        provider = self._routes.get(entry_id)
        if provider is not None:
            return provider
        with self._lock:
            info = self._get(entry_id)
            provider = self._retired.get(entry_id) if info is None else info.provider
            if provider is not None:
                self._routes[entry_id] = provider
            return provider

    def find(self, af: int, type: int, protocol: int) -> ProtocolInfo:  # noqa: A002
        """The first non-layered entry for (af, type, protocol); protocol 0
        matches any.  Nothing for `af`: WSAEAFNOSUPPORT; for `type`:
        WSAESOCKTNOSUPPORT; for `protocol`: WSAEPROTONOSUPPORT."""
        for value, what in ((af, "af"), (type, "type"), (protocol, "protocol")):
            int_arg(value, what, bool_ok=False)
        seen_af = seen_type = False
        with self._lock:
            for info in self._entries:
                if info.layered or info.iAddressFamily != af:
                    continue
                seen_af = True
                if info.iSocketType != type:
                    continue
                seen_type = True
                if protocol and info.iProtocol != protocol:
                    continue
                return info
        code = (WSAEPROTONOSUPPORT if seen_type else
                WSAESOCKTNOSUPPORT if seen_af else WSAEAFNOSUPPORT)
        raise WinsockError(code, "WSASocket")

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<Catalog {len(self._entries)} entries>"

    # -- internals --------------------------------------------------------------------
    def _get(self, entry_id: int) -> ProtocolInfo | None:
        for info in self._entries:
            if info.dwCatalogEntryId == entry_id:
                return info
        return None

    def _adopt_id(self, provider: Any, entry_id: int) -> None:
        # A provider's first entry names its socket handles (WPUCreateSocketHandle).
        if not any(info.provider is provider and info.dwCatalogEntryId != entry_id
                   for info in self._entries):
            provider.catalog_entry_id = entry_id


def type_name(value: object) -> str:
    return type(value).__name__




def _check_provider(provider: Any) -> None:
    if not isinstance(provider, ServiceProvider):
        raise TypeError(f"provider must be a ServiceProvider, not {type_name(provider)}")
