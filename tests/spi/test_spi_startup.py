"""WSPStartup / WSPCleanup bookkeeping and the process's initialised state."""
from __future__ import annotations

import uuid

import pytest

from helpers import assert_winsock
from wsp import Overlapped, Process, ServiceProvider, ThreadId
from wsp.errors import (WSAEINVAL, WSAEOPNOTSUPP, WSANOTINITIALISED, WSAVERNOTSUPPORTED,
                        WinsockError)
from wsp.spi import WSPPROC_TABLE

# Each upcall with arguments that would be valid once the process is started.
UPCALLS = [
    ("WPUCreateSocketHandle", (1, None)),
    ("WPUQuerySocketHandleContext", (4,)),
    ("WPUCloseSocketHandle", (4,)),
    ("WPUModifyIFSHandle", (1, 100)),
    ("WPUOpenCurrentThread", ()),
    ("WPUCloseThread", (ThreadId(4),)),
    ("WPUQueueApc", (ThreadId(4), print, None)),
    ("WPUCreateEvent", ()),
    ("WPUSetEvent", (4,)),
    ("WPUResetEvent", (4,)),
    ("WPUCloseEvent", (4,)),
    ("WPUCompleteOverlappedRequest", (4, Overlapped(), 0, 0)),
    ("WPUQueryBlockingCallback", (1,)),
    ("WPUFDIsSet", (4, {4})),
    ("WPUPostMessage", (print, 1, 2, 3)),
    ("WPUGetProviderPath", (uuid.uuid4(),)),
]


def test_the_table_has_fifteen_entries_plus_complete_overlapped():
    assert len(UPCALLS) == 16
    from wsp import UpcallTable
    public = {n for n in dir(UpcallTable) if n.startswith("WPU")}
    assert public == {name for name, _ in UPCALLS}


@pytest.mark.parametrize("name, args", UPCALLS, ids=[n for n, _ in UPCALLS])
def test_every_upcall_needs_an_outstanding_startup(name, args):
    proc = Process()
    with pytest.raises(WinsockError) as e:
        getattr(proc.upcalls, name)(*args)
    assert_winsock(e, WSANOTINITIALISED)
    assert e.value.funcname == name
    prov = ServiceProvider()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    prov.WSPCleanup()                        # after the last cleanup: again refused
    with pytest.raises(WinsockError) as e:
        getattr(proc.upcalls, name)(*args)
    assert_winsock(e, WSANOTINITIALISED)


@pytest.mark.parametrize("version", [0x0202, 0x0302, 0x0203, 0x0303, 0xFFFF])
def test_version_22_or_above_negotiates_22(proc, version):
    prov = ServiceProvider()
    data = prov.WSPStartup(version, None, proc.upcalls)
    assert data.wVersion == 0x0202 and data.wHighVersion == 0x0202
    assert data.szDescription == ServiceProvider.description == "wsp service provider"
    prov.WSPCleanup()


@pytest.mark.parametrize("version", [0x0000, 0x0001, 0x0101, 0x0102, 0x0201, 0x10000, -1])
def test_version_below_22_is_not_supported(proc, version):
    prov = ServiceProvider()
    with pytest.raises(WinsockError) as e:
        prov.WSPStartup(version, None, proc.upcalls)
    assert_winsock(e, WSAVERNOTSUPPORTED)
    assert not prov.started and not proc.initialised


def test_startup_argument_types(proc):
    prov = ServiceProvider()
    with pytest.raises(TypeError):
        prov.WSPStartup("2.2", None, proc.upcalls)
    with pytest.raises(TypeError):
        prov.WSPStartup(0x0202, None, proc)          # the process is not its upcall table


def test_reference_counting_needs_one_cleanup_per_startup(proc):
    prov = ServiceProvider()
    for _ in range(3):
        prov.WSPStartup(0x0202, None, proc.upcalls)
    for _ in range(2):
        prov.WSPCleanup()
        assert prov.started and proc.initialised
        proc.upcalls.WPUCreateEvent()                # upcalls still work
    prov.WSPCleanup()
    assert not prov.started and not proc.initialised
    with pytest.raises(WinsockError) as e:
        prov.WSPCleanup()
    assert_winsock(e, WSANOTINITIALISED)


def test_cleanup_without_startup(proc):
    with pytest.raises(WinsockError) as e:
        ServiceProvider().WSPCleanup()
    assert_winsock(e, WSANOTINITIALISED)


def test_process_is_initialised_while_any_provider_is_started(proc):
    a, b = ServiceProvider(), ServiceProvider()
    a.WSPStartup(0x0202, None, proc.upcalls)
    b.WSPStartup(0x0202, None, proc.upcalls)
    a.WSPCleanup()
    assert proc.initialised
    proc.upcalls.WPUCreateEvent()
    b.WSPCleanup()
    assert not proc.initialised


def test_a_provider_serves_one_process_at_a_time():
    one, two = Process(), Process()
    prov = ServiceProvider()
    prov.WSPStartup(0x0202, None, one.upcalls)
    with pytest.raises(WinsockError) as e:
        prov.WSPStartup(0x0202, None, two.upcalls)
    assert_winsock(e, WSAEINVAL)
    prov.WSPCleanup()
    prov.WSPStartup(0x0202, None, two.upcalls)     # free again after the last cleanup
    assert prov.process is two and two.initialised and not one.initialised
    prov.WSPCleanup()


def test_startup_again_at_once_after_cleanup(proc):
    prov = ServiceProvider()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    prov.WSPCleanup()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    assert proc.initialised
    prov.WSPCleanup()


@pytest.mark.parametrize("name", WSPPROC_TABLE)
def test_all_thirty_entries_exist(provider, name):
    assert len(WSPPROC_TABLE) == 30 and len(set(WSPPROC_TABLE)) == 30
    assert callable(getattr(provider, name))


@pytest.mark.parametrize("name", [n for n in WSPPROC_TABLE
                                  if n not in ("WSPCleanup", "WSPGetOverlappedResult")])
def test_unsupported_entries_raise_eopnotsupp(provider, name):
    with pytest.raises(WinsockError) as e:
        getattr(provider, name)(4, 5, 6)
    assert_winsock(e, WSAEOPNOTSUPP)
    assert e.value.funcname == name


def test_failing_startup_hook_leaves_nothing_started(proc):
    class Broken(ServiceProvider):
        def on_startup(self, protocol_info):
            raise RuntimeError("cannot start")

    prov = Broken()
    with pytest.raises(RuntimeError, match="^cannot start$"):      # the hook's own error
        prov.WSPStartup(0x0202, None, proc.upcalls)
    assert not prov.started and not proc.initialised and proc.resources()["providers"] == 0


def test_provider_path_names_the_class(proc, provider):
    path = proc.upcalls.WPUGetProviderPath(provider.provider_id)
    assert path == "wsp.spi.provider:ServiceProvider"
    assert proc.upcalls.WPUGetProviderPath(str(provider.provider_id)) == path
    for bad in (uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(WinsockError) as e:
            proc.upcalls.WPUGetProviderPath(bad)
        assert_winsock(e, WSAEINVAL)
    with pytest.raises(TypeError):
        proc.upcalls.WPUGetProviderPath(42)


def test_events_ports_and_waits_work_without_startup(proc):
    assert not proc.initialised
    ev = proc.WSACreateEvent()
    proc.WSASetEvent(ev)
    assert proc.WSAWaitForMultipleEvents([ev], False, 0, False) == 0
    port = proc.CreateIoCompletionPort(None)
    proc.PostQueuedCompletionStatus(port, 1, 2, None)
    assert proc.GetQueuedCompletionStatus(port, 0) == (0, 1, 2, None)
    assert proc.SleepEx(0, True) == 0
    proc.CloseHandle(port)
    proc.WSACloseEvent(ev)
