"""The protocol catalog of a Process (issue 5, part 1; SPEC §8): base
entries (ChainLen 1), layered entries (ChainLen 0) and protocol chains
(ChainLen 2 .. MAX_PROTOCOL_CHAIN, top layer first, base last), installed and
removed at run time, and looked up by (family, type, protocol)."""
from __future__ import annotations

import threading

import pytest

import wsp
import wsp.sim
from wsp import (AF_INET, AF_INET6, BASE_PROTOCOL, IPPROTO_TCP, IPPROTO_UDP, LAYERED_PROTOCOL,
                 MAX_PROTOCOL_CHAIN, SOCK_DGRAM, SOCK_STREAM, ServiceProvider, WinsockError)
from wsp.lsp import Catalog, LayeredProvider, ProtocolChain, ProtocolInfo

JOIN = 10.0


def _code(excinfo):
    assert isinstance(excinfo.value, WinsockError), repr(excinfo.value)
    return excinfo.value.winerror


def _ids(catalog):
    return [info.dwCatalogEntryId for info in catalog.entries()]


@pytest.fixture
def net():
    return wsp.sim.Network(seed=0)


@pytest.fixture
def base(net):
    return wsp.sim.Provider(net)


@pytest.fixture
def cat():
    return Catalog()


class _Layer(LayeredProvider):
    description = "test layer"


# ------------------------------------------------------------ the record types
def test_protocol_chain_equality_and_hash():
    a = ProtocolChain(2, [1003, 1001])
    assert a.ChainLen == 2 and a.ChainEntries == (1003, 1001)
    assert a == ProtocolChain(2, (1003, 1001))
    assert hash(a) == hash(ProtocolChain(2, (1003, 1001)))
    assert a != ProtocolChain(2, (1001, 1003))
    assert a != ProtocolChain(3, (1003, 1001))
    assert a != (2, (1003, 1001))
    assert ProtocolChain(0).ChainEntries == ()


def test_process_has_an_empty_catalog():
    proc = wsp.Process()
    assert isinstance(proc.catalog, Catalog)
    assert len(proc.catalog) == 0 and proc.catalog.entries() == []


# ------------------------------------------------------------------ install_base
def test_install_base_makes_a_base_entry(cat, base):
    info = cat.install_base(base, AF_INET, SOCK_STREAM, IPPROTO_TCP)
    assert isinstance(info, ProtocolInfo)
    assert info.dwCatalogEntryId == 1001
    assert info.ProtocolChain == ProtocolChain(BASE_PROTOCOL, (1001,))
    assert info.ProtocolChain.ChainLen == 1
    assert (info.iAddressFamily, info.iSocketType, info.iProtocol) == (AF_INET, SOCK_STREAM, 6)
    assert info.szProtocol == base.description
    assert info.ProviderId == base.provider_id
    assert info.provider is base
    assert info.layered is False
    assert base.catalog_entry_id == 1001
    assert cat.entries() == [info] and len(cat) == 1


def test_install_base_second_entry_keeps_the_providers_first_id(cat, base):
    first = cat.install_base(base, AF_INET, SOCK_STREAM, IPPROTO_TCP)
    second = cat.install_base(base, AF_INET, SOCK_DGRAM, IPPROTO_UDP, name="udp")
    assert (first.dwCatalogEntryId, second.dwCatalogEntryId) == (1001, 1002)
    assert second.szProtocol == "udp"
    assert base.catalog_entry_id == 1001         # its handles are named by its first entry
    assert _ids(cat) == [1001, 1002]             # bases go after the others


def test_install_base_sets_a_fresh_providers_id_only(cat, net):
    a, b = wsp.sim.Provider(net), wsp.sim.Provider(net)
    cat.install_base(a, AF_INET, SOCK_STREAM, 0)
    cat.install_base(b, AF_INET, SOCK_STREAM, 0)
    assert (a.catalog_entry_id, b.catalog_entry_id) == (1001, 1002)


# ----------------------------------------------------------------- install_layer
def test_install_layer_makes_a_layered_entry(cat, base):
    layer = _Layer(base)
    info = cat.install_layer(layer)
    assert info.dwCatalogEntryId == 1001
    assert info.ProtocolChain.ChainLen == LAYERED_PROTOCOL == 0
    assert info.ProtocolChain.ChainEntries == (1001,)
    assert info.layered is True
    assert (info.iAddressFamily, info.iSocketType, info.iProtocol) == (0, 0, 0)
    assert info.szProtocol == "test layer"
    assert info.provider is layer
    assert layer.catalog_entry_id == 1001
    assert cat.install_layer(_Layer(base), name="other").szProtocol == "other"


# ----------------------------------------------------------------- install_chain
def test_install_chain_top_first_and_ahead_of_the_bases(cat, base):
    tcp = cat.install_base(base, AF_INET, SOCK_STREAM, IPPROTO_TCP)
    layer = _Layer(base)
    lay = cat.install_layer(layer)
    chain = cat.install_chain([lay.dwCatalogEntryId, tcp.dwCatalogEntryId])
    assert chain.dwCatalogEntryId == 1003
    assert chain.ProtocolChain == ProtocolChain(2, (1002, 1001))
    assert (chain.iAddressFamily, chain.iSocketType, chain.iProtocol) == (AF_INET, SOCK_STREAM,
                                                                           IPPROTO_TCP)
    assert chain.provider is layer                 # the top of the chain serves it
    assert chain.ProviderId == layer.provider_id
    assert chain.layered is False
    assert chain.szProtocol == "test layer over " + base.description
    assert _ids(cat) == [1003, 1001, 1002]         # first=True: in front of everything
    assert cat.find(AF_INET, SOCK_STREAM, 0) is chain


def test_install_chain_last_when_not_first(cat, base):
    tcp = cat.install_base(base, AF_INET, SOCK_STREAM, IPPROTO_TCP)
    lay = cat.install_layer(_Layer(base))
    chain = cat.install_chain([lay.dwCatalogEntryId, tcp.dwCatalogEntryId], name="mine",
                              first=False)
    assert chain.szProtocol == "mine"
    assert _ids(cat) == [1001, 1002, 1003]
    assert cat.find(AF_INET, SOCK_STREAM, 0) is tcp    # the base comes first now


def test_chain_of_maximum_length(cat, base):
    tcp = cat.install_base(base, AF_INET, SOCK_STREAM, IPPROTO_TCP)
    layers = [cat.install_layer(_Layer(base)).dwCatalogEntryId
              for _ in range(MAX_PROTOCOL_CHAIN - 1)]
    chain = cat.install_chain(layers + [tcp.dwCatalogEntryId])
    assert MAX_PROTOCOL_CHAIN == 7
    assert chain.ProtocolChain.ChainLen == 7
    assert chain.ProtocolChain.ChainEntries == tuple(layers) + (1001,)


@pytest.fixture
def parts(cat, base):
    """A catalog with two bases, seven layered entries and one chain."""
    tcp = cat.install_base(base, AF_INET, SOCK_STREAM, IPPROTO_TCP).dwCatalogEntryId
    udp = cat.install_base(base, AF_INET, SOCK_DGRAM, IPPROTO_UDP).dwCatalogEntryId
    layers = [cat.install_layer(_Layer(base)).dwCatalogEntryId for _ in range(7)]
    chain = cat.install_chain([layers[0], tcp]).dwCatalogEntryId
    return {"tcp": tcp, "udp": udp, "layers": layers, "chain": chain}


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: [], id="empty"),
    pytest.param(lambda p: [p["tcp"]], id="too-short-base-only"),
    pytest.param(lambda p: [p["layers"][0]], id="too-short-layer-only"),
    pytest.param(lambda p: p["layers"][:7] + [p["tcp"]], id="too-long-8"),
    pytest.param(lambda p: [p["tcp"], p["tcp"]], id="base-as-layer"),
    pytest.param(lambda p: [p["layers"][0], p["tcp"], p["udp"]], id="base-in-the-middle"),
    pytest.param(lambda p: [p["chain"], p["tcp"]], id="chain-as-layer"),
    pytest.param(lambda p: [p["layers"][0], p["layers"][1]], id="layer-at-the-bottom"),
    pytest.param(lambda p: [p["layers"][0], p["chain"]], id="chain-at-the-bottom"),
    pytest.param(lambda p: [99999, p["tcp"]], id="unknown-layer"),
    pytest.param(lambda p: [p["layers"][0], 99999], id="unknown-base"),
    pytest.param(lambda p: [p["layers"][0], 0], id="zero-id"),
])
def test_install_chain_rejects_bad_chains_with_wsaeinval(cat, parts, make):
    before = cat.entries()
    with pytest.raises(WinsockError) as exc:
        cat.install_chain(make(parts))
    assert exc.value.winerror == wsp.WSAEINVAL
    assert cat.entries() == before                 # nothing added


@pytest.mark.parametrize("ids", [
    pytest.param(5, id="not-iterable"),
    pytest.param(["1001", "1002"], id="strings"),
    pytest.param("ab", id="a-string"),
    pytest.param([1001.0, 1002], id="float"),
    pytest.param([True, 1001], id="bool"),
    pytest.param([None, 1001], id="none"),
])
def test_install_chain_type_errors(cat, parts, ids):
    before = cat.entries()
    with pytest.raises(TypeError):
        cat.install_chain(ids)
    assert cat.entries() == before


# ------------------------------------------------------------------ install(stack)
def test_install_base_provider_gets_one_entry_per_protocol(cat, base):
    infos = cat.install(base)
    assert [(i.iAddressFamily, i.iSocketType, i.iProtocol) for i in infos] == [
        (AF_INET, SOCK_STREAM, IPPROTO_TCP), (AF_INET, SOCK_DGRAM, IPPROTO_UDP)]
    assert all(i.ProtocolChain.ChainLen == 1 for i in infos)
    assert cat.entries() == infos
    assert base.catalog_entry_id == infos[0].dwCatalogEntryId


def test_install_layered_stack_makes_layers_bases_and_chains(cat, base):
    mid = _Layer(base)
    top = LayeredProvider(mid)
    chains = cat.install(top)
    entries = cat.entries()
    bases = [i for i in entries if i.ProtocolChain.ChainLen == 1]
    layered = [i for i in entries if i.layered]
    assert len(entries) == 6 and len(bases) == 2 and len(layered) == 2
    assert {i.provider for i in layered} == {top, mid}
    top_id = next(i.dwCatalogEntryId for i in layered if i.provider is top)
    mid_id = next(i.dwCatalogEntryId for i in layered if i.provider is mid)
    assert (top.catalog_entry_id, mid.catalog_entry_id) == (top_id, mid_id)
    # one chain per base entry, in the bottom provider's order, ahead of everything
    assert entries[:2] == chains
    assert [c.iSocketType for c in chains] == [SOCK_STREAM, SOCK_DGRAM]
    for chain, b in zip(chains, bases):
        assert chain.ProtocolChain == ProtocolChain(3, (top_id, mid_id, b.dwCatalogEntryId))
        assert chain.provider is top
        assert (chain.iAddressFamily, chain.iSocketType, chain.iProtocol) == (
            b.iAddressFamily, b.iSocketType, b.iProtocol)
    assert cat.find(AF_INET, SOCK_STREAM, 0) is chains[0]
    assert cat.find(AF_INET, SOCK_DGRAM, 0) is chains[1]


def test_install_reuses_existing_base_and_layer_entries(cat, base):
    bases = cat.install(base)
    layer = _Layer(base)
    lay = cat.install_layer(layer)
    chains = cat.install(layer)
    assert [c.ProtocolChain.ChainEntries for c in chains] == [
        (lay.dwCatalogEntryId, bases[0].dwCatalogEntryId),
        (lay.dwCatalogEntryId, bases[1].dwCatalogEntryId)]
    assert len(cat) == 5                      # 2 bases, 1 layer, 2 chains: nothing duplicated


def test_install_not_first_appends_chains_in_order(cat, base):
    chains = cat.install(_Layer(base), first=False)
    entries = cat.entries()
    assert entries[-2:] == chains
    assert [c.iSocketType for c in chains] == [SOCK_STREAM, SOCK_DGRAM]
    assert cat.find(AF_INET, SOCK_STREAM, 0).ProtocolChain.ChainLen == 1


def test_install_provider_without_protocols_is_wsaeinval(cat):
    with pytest.raises(WinsockError) as exc:
        cat.install(ServiceProvider())
    assert exc.value.winerror == wsp.WSAEINVAL
    with pytest.raises(WinsockError) as exc:
        cat.install(_Layer(ServiceProvider()))
    assert exc.value.winerror == wsp.WSAEINVAL


# ------------------------------------------------------------------------- remove
def test_remove_and_lookups(cat, base):
    tcp, udp = cat.install(base)
    assert cat.get(tcp.dwCatalogEntryId) is tcp
    assert cat.provider_of(udp.dwCatalogEntryId) is base
    cat.remove(udp.dwCatalogEntryId)
    assert cat.entries() == [tcp]
    assert cat.get(udp.dwCatalogEntryId) is None
    assert cat.provider_of(udp.dwCatalogEntryId) is None
    with pytest.raises(WinsockError) as exc:
        cat.find(AF_INET, SOCK_DGRAM, 0)
    assert exc.value.winerror == wsp.WSAESOCKTNOSUPPORT
    with pytest.raises(WinsockError) as exc:
        cat.remove(udp.dwCatalogEntryId)            # already gone
    assert exc.value.winerror == wsp.WSAEINVAL


def test_remove_unknown_id_is_wsaeinval(cat, base):
    cat.install(base)
    for bad in (0, 1000, 5000, -1):
        with pytest.raises(WinsockError) as exc:
            cat.remove(bad)
        assert exc.value.winerror == wsp.WSAEINVAL
    assert len(cat) == 2


def test_remove_refused_while_a_chain_names_the_entry(cat, base):
    layer = _Layer(base)
    chains = cat.install(layer)
    lay = next(i for i in cat.entries() if i.layered)
    tcp = next(i for i in cat.entries() if i.ProtocolChain.ChainLen == 1
               and i.iSocketType == SOCK_STREAM)
    for entry_id in (lay.dwCatalogEntryId, tcp.dwCatalogEntryId):
        with pytest.raises(WinsockError) as exc:
            cat.remove(entry_id)
        assert exc.value.winerror == wsp.WSAEINVAL
    assert len(cat) == 5
    cat.remove(chains[0].dwCatalogEntryId)
    cat.remove(tcp.dwCatalogEntryId)               # no chain names it any more
    with pytest.raises(WinsockError) as exc:
        cat.remove(lay.dwCatalogEntryId)           # the UDP chain still names the layer
    assert exc.value.winerror == wsp.WSAEINVAL
    cat.remove(chains[1].dwCatalogEntryId)
    cat.remove(lay.dwCatalogEntryId)
    assert [i.iSocketType for i in cat.entries()] == [SOCK_DGRAM]
    assert cat.provider_of(lay.dwCatalogEntryId) is None


def test_ids_are_never_reused_after_remove(cat, base):
    tcp, udp = cat.install(base)
    cat.remove(udp.dwCatalogEntryId)
    again = cat.install_base(base, AF_INET, SOCK_DGRAM, IPPROTO_UDP)
    assert again.dwCatalogEntryId == 1003


def test_entries_is_a_snapshot(cat, base):
    cat.install(base)
    snapshot = cat.entries()
    snapshot.clear()
    assert len(cat.entries()) == 2 and len(cat) == 2


# --------------------------------------------------------------------------- find
def test_find_first_match_and_protocol_zero_matches_any(cat, base):
    tcp, udp = cat.install(base)
    assert cat.find(AF_INET, SOCK_STREAM, 0) is tcp
    assert cat.find(AF_INET, SOCK_STREAM, IPPROTO_TCP) is tcp
    assert cat.find(AF_INET, SOCK_DGRAM, 0) is udp
    assert cat.find(AF_INET, SOCK_DGRAM, IPPROTO_UDP) is udp


@pytest.mark.parametrize("triple, code", [
    ((AF_INET6, SOCK_STREAM, 0), wsp.WSAEAFNOSUPPORT),
    ((0, 0, 0), wsp.WSAEAFNOSUPPORT),
    ((AF_INET, 5, 0), wsp.WSAESOCKTNOSUPPORT),
    ((AF_INET, SOCK_STREAM, IPPROTO_UDP), wsp.WSAEPROTONOSUPPORT),
    ((AF_INET, SOCK_DGRAM, 99), wsp.WSAEPROTONOSUPPORT),
])
def test_find_error_codes(cat, base, triple, code):
    cat.install(_Layer(base))
    with pytest.raises(WinsockError) as exc:
        cat.find(*triple)
    assert exc.value.winerror == code


def test_find_on_an_empty_catalog_and_layered_entries_only(cat, base):
    with pytest.raises(WinsockError) as exc:
        cat.find(AF_INET, SOCK_STREAM, 0)
    assert exc.value.winerror == wsp.WSAEAFNOSUPPORT
    cat.install_layer(_Layer(base))                 # af 0, type 0, never chosen
    with pytest.raises(WinsockError) as exc:
        cat.find(0, 0, 0)
    assert exc.value.winerror == wsp.WSAEAFNOSUPPORT


def test_find_prefers_the_newest_chain_installed_first(cat, base):
    cat.install(base)
    inner = cat.install(_Layer(base))
    outer_layer = _Layer(base)
    outer = cat.install(outer_layer)
    assert cat.find(AF_INET, SOCK_STREAM, 0) is outer[0]
    assert cat.find(AF_INET, SOCK_DGRAM, 0) is outer[1]
    cat.remove(outer[0].dwCatalogEntryId)
    assert cat.find(AF_INET, SOCK_STREAM, 0) is inner[0]
    # catalog order: chains (stream before datagram, newest first), bases, layers
    kinds = [(i.ProtocolChain.ChainLen, i.iSocketType) for i in cat.entries()]
    assert kinds == [(2, SOCK_DGRAM), (2, SOCK_STREAM), (2, SOCK_DGRAM), (1, SOCK_STREAM),
                     (1, SOCK_DGRAM), (0, 0), (0, 0)]


# ----------------------------------------------------------------------- TypeError
@pytest.mark.parametrize("call", [
    pytest.param(lambda c, b: c.install_base(object(), AF_INET, SOCK_STREAM, 0), id="base-obj"),
    pytest.param(lambda c, b: c.install_base(None, AF_INET, SOCK_STREAM, 0), id="base-none"),
    pytest.param(lambda c, b: c.install_base(b, "2", SOCK_STREAM, 0), id="af-str"),
    pytest.param(lambda c, b: c.install_base(b, AF_INET, 1.0, 0), id="type-float"),
    pytest.param(lambda c, b: c.install_base(b, AF_INET, SOCK_STREAM, None), id="proto-none"),
    pytest.param(lambda c, b: c.install_base(b, True, SOCK_STREAM, 0), id="af-bool"),
    pytest.param(lambda c, b: c.install_layer(object()), id="layer-obj"),
    pytest.param(lambda c, b: c.install_layer("layer"), id="layer-str"),
    pytest.param(lambda c, b: LayeredProvider(object()), id="lower-obj"),
])
def test_type_errors(cat, base, call):
    with pytest.raises(TypeError):
        call(cat, base)
    assert len(cat) == 0


@pytest.mark.parametrize("bad", [object(), None, 5], ids=["object", "none", "int"])
def test_install_of_a_non_provider_is_a_type_error(cat, bad):
    with pytest.raises(TypeError):
        cat.install(bad)


def test_remove_with_a_non_int_id_is_a_type_error(cat, base):
    cat.install(base)
    with pytest.raises(TypeError):
        cat.remove("1001")


def test_find_with_a_non_int_family_is_a_type_error(cat, base):
    cat.install(base)
    with pytest.raises(TypeError):
        cat.find("2", SOCK_STREAM, 0)


# ----------------------------------------------------------------- thread safety
def test_concurrent_installs_get_unique_ids(cat, net):
    n_threads, per_thread = 8, 40
    barrier = threading.Barrier(n_threads)
    results: list[list[ProtocolInfo]] = [[] for _ in range(n_threads)]
    errors = []

    def work(k):
        try:
            barrier.wait(JOIN)
            for _ in range(per_thread):
                b = wsp.sim.Provider(net)
                tcp = cat.install_base(b, AF_INET, SOCK_STREAM, IPPROTO_TCP)
                lay = cat.install_layer(_Layer(b))
                chain = cat.install_chain([lay.dwCatalogEntryId, tcp.dwCatalogEntryId])
                results[k] += [tcp, lay, chain]
        except BaseException as exc:     # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    made = [info for r in results for info in r]
    ids = [info.dwCatalogEntryId for info in made]
    total = n_threads * per_thread * 3
    assert len(ids) == total and len(set(ids)) == total
    assert sorted(ids) == list(range(1001, 1001 + total))
    assert len(cat) == total and {id(i) for i in cat.entries()} == {id(i) for i in made}
    for info in made:
        if info.ProtocolChain.ChainLen == 1:
            assert info.provider.catalog_entry_id == info.dwCatalogEntryId
    # every chain names entries that exist and all chains are ahead of the rest
    kinds = [info.ProtocolChain.ChainLen for info in cat.entries()]
    n_chains = n_threads * per_thread
    assert kinds[:n_chains] == [2] * n_chains
    for info in cat.entries()[:n_chains]:
        assert all(cat.get(i) is not None for i in info.ProtocolChain.ChainEntries)


def test_concurrent_removes_and_finds(cat, base):
    cat.install(base)
    lay = cat.install_layer(_Layer(base)).dwCatalogEntryId
    tcp = cat.find(AF_INET, SOCK_STREAM, IPPROTO_TCP).dwCatalogEntryId
    chains = [cat.install_chain([lay, tcp]).dwCatalogEntryId for _ in range(200)]
    errors = []

    def remover(mine):
        try:
            for entry_id in mine:
                cat.remove(entry_id)
        except BaseException as exc:
            errors.append(exc)

    def finder():
        try:
            for _ in range(400):
                info = cat.find(AF_INET, SOCK_STREAM, 0)
                assert info.iSocketType == SOCK_STREAM
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=remover, args=(chains[k::4],), daemon=True)
               for k in range(4)] + [threading.Thread(target=finder, daemon=True)
                                     for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert [i.ProtocolChain.ChainLen for i in cat.entries()] == [1, 1, 0]
    assert cat.find(AF_INET, SOCK_STREAM, 0).dwCatalogEntryId == tcp
