"""Tests for wsp.errors: the WSA code table and the WinsockError hierarchy."""

from __future__ import annotations

import copy
import csv
import enum
import errno
import pickle
import sys
from pathlib import Path

import pytest

from wsp import errors
from wsp.errors import WinsockError

# The project's own copy of the WSA code table (public reference data: name,
# value, POSIX twin, that twin's Linux errno number, the exception CPython
# raises for the code on Windows).  It lives in the repository, so a plain
# clone tests every row; a missing or truncated file is an error, never a skip.
TABLE_PATH = Path(__file__).resolve().parent / "data" / "wsa-errors.tsv"
TABLE_COLUMNS = ["name", "value", "posix_name", "linux_errno", "python_exception_on_windows"]
TABLE_ROWS = 97


def _load_table() -> list[dict[str, str]]:
    # No fallback: open() raises if the file is gone, failing the collection.
    with TABLE_PATH.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        rows = list(reader)
        assert reader.fieldnames == TABLE_COLUMNS, reader.fieldnames
    return rows


TABLE = _load_table()
ROW_IDS = [row["name"] for row in TABLE]

# code -> (wsp subclass, built-in exception it must also be)
SUBCLASS_CASES = {
    errors.WSAECONNRESET: (errors.WinsockConnectionResetError, ConnectionResetError),
    errors.WSAECONNABORTED: (
        errors.WinsockConnectionAbortedError,
        ConnectionAbortedError,
    ),
    errors.WSAECONNREFUSED: (
        errors.WinsockConnectionRefusedError,
        ConnectionRefusedError,
    ),
    errors.WSAEWOULDBLOCK: (errors.WinsockBlockingIOError, BlockingIOError),
    errors.WSAEINPROGRESS: (errors.WinsockBlockingIOError, BlockingIOError),
    errors.WSAEALREADY: (errors.WinsockBlockingIOError, BlockingIOError),
    errors.WSAETIMEDOUT: (errors.WinsockTimeoutError, TimeoutError),
    errors.WSAESHUTDOWN: (errors.WinsockBrokenPipeError, BrokenPipeError),
    errors.WSAEINTR: (errors.WinsockInterruptedError, InterruptedError),
    errors.WSAEACCES: (errors.WinsockPermissionError, PermissionError),
}
BUILTIN_OSERROR_SUBCLASSES = (
    ConnectionResetError,
    ConnectionAbortedError,
    ConnectionRefusedError,
    BlockingIOError,
    TimeoutError,
    BrokenPipeError,
    InterruptedError,
    PermissionError,
    ConnectionError,
    FileNotFoundError,
    ChildProcessError,
    ProcessLookupError,
)


# --- the reference table -----------------------------------------------------


def test_the_table_is_complete() -> None:
    assert TABLE_PATH.is_file(), f"{TABLE_PATH} is part of the repository"
    assert len(TABLE) == TABLE_ROWS
    assert len(set(ROW_IDS)) == TABLE_ROWS                       # one row per name
    assert len({row["value"] for row in TABLE}) == TABLE_ROWS    # and per code
    for row in TABLE:
        assert all(row[col] for col in TABLE_COLUMNS), row     # no blank cells
    # spot checks of the copy itself, so a damaged row cannot agree with a
    # damaged wsp.errors by accident
    by_name = {row["name"]: row for row in TABLE}
    assert (by_name["WSAEHOSTUNREACH"]["value"], by_name["WSAEHOSTUNREACH"]["posix_name"]) == (
        "10065", "EHOSTUNREACH")
    assert (by_name["WSAEWOULDBLOCK"]["value"], by_name["WSAEWOULDBLOCK"]["posix_name"]) == (
        "10035", "EWOULDBLOCK")
    assert by_name["WSA_IO_PENDING"]["value"] == "997"
    assert by_name["WSA_IO_PENDING"]["posix_name"] == "-"
    assert ROW_IDS[0] == "WSA_INVALID_HANDLE" and ROW_IDS[-1] == "WSA_IPSEC_NAME_POLICY_ERROR"


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_every_table_name_is_a_constant(row: dict[str, str]) -> None:
    value = getattr(errors, row["name"])
    assert type(value) is int
    assert value == int(row["value"])
    assert row["name"] in errors.__all__


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_errno_is_host_value_of_posix_twin(row: dict[str, str]) -> None:
    posix = row["posix_name"]
    expected = None if posix == "-" else getattr(errno, posix, None)
    err = WinsockError(int(row["value"]))
    assert err.errno == expected
    assert errors.ERROR_POSIX_NAMES[int(row["value"])] == (
        None if posix == "-" else posix
    )
    if sys.platform.startswith("linux"):
        # the table's own number for the twin: "-" where Linux has none
        linux = None if row["linux_errno"] == "-" else int(row["linux_errno"])
        assert err.errno == linux


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_names_and_messages_cover_the_table(row: dict[str, str]) -> None:
    code = int(row["value"])
    assert errors.ERROR_NAMES[code] == row["name"]
    assert errors.error_name(code) == row["name"]
    message = errors.ERROR_MESSAGES[code]
    assert isinstance(message, str) and message.strip() == message and message
    err = WinsockError(code)
    assert err.strerror == f"{row['name']}: {message}"


def test_dicts_have_exactly_the_table_codes() -> None:
    codes = {int(row["value"]) for row in TABLE}
    assert set(errors.ERROR_NAMES) == codes
    assert set(errors.ERROR_MESSAGES) == codes
    assert set(errors.ERROR_POSIX_NAMES) == codes


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_builtin_class_matches_table(row: dict[str, str]) -> None:
    # The table's last column names the exception CPython raises on Windows;
    # the wsp error must be an instance of that class too.
    builtin = {
        "OSError": OSError,
        "InterruptedError": InterruptedError,
        "PermissionError": PermissionError,
        "BlockingIOError": BlockingIOError,
        "ConnectionAbortedError": ConnectionAbortedError,
        "ConnectionResetError": ConnectionResetError,
        "BrokenPipeError": BrokenPipeError,
        "TimeoutError": TimeoutError,
        "ConnectionRefusedError": ConnectionRefusedError,
    }[row["python_exception_on_windows"]]
    err = WinsockError(int(row["value"]))
    assert isinstance(err, builtin)
    if builtin is OSError:
        assert type(err) is WinsockError


def test_known_errno_values_on_this_host() -> None:
    # Concrete spot checks that do not depend on the table file.
    assert WinsockError(errors.WSAECONNRESET).errno == errno.ECONNRESET
    assert WinsockError(errors.WSAENOTSOCK).errno == errno.ENOTSOCK
    assert WinsockError(errors.WSAEWOULDBLOCK).errno == errno.EWOULDBLOCK
    assert WinsockError(errors.WSA_INVALID_HANDLE).errno == errno.EBADF
    assert WinsockError(errors.WSA_IO_PENDING).errno is None
    assert WinsockError(errors.WSAHOST_NOT_FOUND).errno is None
    assert WinsockError(errors.WSAEPROCLIM).errno == getattr(errno, "EPROCLIM", None)


# --- values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WSAENOTSOCK", 10038),
        ("WSAECONNRESET", 10054),
        ("WSAEWOULDBLOCK", 10035),
        ("WSA_IO_PENDING", 997),
        ("WSA_IO_INCOMPLETE", 996),
        ("WSA_OPERATION_ABORTED", 995),
        ("WSA_INVALID_HANDLE", 6),
        ("WSANOTINITIALISED", 10093),
        ("WSA_IPSEC_NAME_POLICY_ERROR", 11033),
        # extras that are not table rows
        ("NO_ERROR", 0),
        ("SOCKET_ERROR", -1),
        ("WAIT_TIMEOUT", 258),
        ("WSA_WAIT_TIMEOUT", 258),
        ("WSA_WAIT_EVENT_0", 0),
        ("WSA_WAIT_IO_COMPLETION", 192),
        ("WAIT_IO_COMPLETION", 192),
        ("WSA_INFINITE", 0xFFFFFFFF),
        ("INFINITE", 0xFFFFFFFF),
        ("ERROR_NOT_FOUND", 1168),
    ],
)
def test_values(name: str, value: int) -> None:
    assert getattr(errors, name) == value
    assert type(getattr(errors, name)) is int
    assert name in errors.__all__


def test_all_names_exist() -> None:
    for name in errors.__all__:
        assert hasattr(errors, name), name
    assert len(set(errors.__all__)) == len(errors.__all__)


def test_error_name() -> None:
    assert errors.error_name(10038) == "WSAENOTSOCK"
    assert errors.error_name(12345) == "error 12345"
    assert errors.error_name(-7) == "error -7"
    with pytest.raises(TypeError):
        errors.error_name("10038")  # type: ignore[arg-type]


# --- subclass selection ------------------------------------------------------


@pytest.mark.parametrize(
    "code", list(SUBCLASS_CASES), ids=[errors.ERROR_NAMES[c] for c in SUBCLASS_CASES]
)
def test_base_constructor_picks_subclass(code: int) -> None:
    cls, builtin = SUBCLASS_CASES[code]
    err = WinsockError(code, "WSPRecv")
    assert type(err) is cls
    assert isinstance(err, builtin)
    assert isinstance(err, WinsockError)
    assert isinstance(err, OSError)
    assert issubclass(cls, builtin) and issubclass(cls, WinsockError)
    assert err.winerror == code
    assert err.funcname == "WSPRecv"
    assert err.errno == getattr(errno, errors.ERROR_POSIX_NAMES[code])
    assert err.args == (code, err.strerror)


@pytest.mark.parametrize(
    "code", list(SUBCLASS_CASES), ids=[errors.ERROR_NAMES[c] for c in SUBCLASS_CASES]
)
def test_subclass_called_directly(code: int) -> None:
    cls, builtin = SUBCLASS_CASES[code]
    err = cls(code, funcname="WSPSend")
    assert type(err) is cls
    assert isinstance(err, builtin)
    assert err.winerror == code
    assert err.funcname == "WSPSend"


@pytest.mark.parametrize(
    "code",
    [errors.WSAENOTSOCK, errors.WSAEINVAL, errors.WSA_IO_PENDING, errors.WSAENOBUFS],
)
def test_other_codes_are_plain(code: int) -> None:
    err = WinsockError(code)
    assert type(err) is WinsockError
    assert not isinstance(err, BUILTIN_OSERROR_SUBCLASSES)


def test_oserror_remapping_does_not_happen() -> None:
    # 10038 and friends must not be mistaken for host errno numbers, and a
    # code whose host errno maps to a built-in subclass must not pick it up.
    err = WinsockError(errors.WSAEBADF)
    assert type(err) is WinsockError
    err = WinsockError(errors.WSA_INVALID_PARAMETER)
    assert type(err) is WinsockError


def test_except_builtin_catches() -> None:
    with pytest.raises(ConnectionResetError) as info:
        raise WinsockError(errors.WSAECONNRESET, "WSPRecv")
    assert info.value.winerror == errors.WSAECONNRESET

    try:
        raise WinsockError(errors.WSAECONNRESET)
    except ConnectionError as exc:
        assert isinstance(exc, WinsockError)
    else:  # pragma: no cover
        pytest.fail("not raised")

    with pytest.raises(OSError) as info:
        raise WinsockError(errors.WSAENOTSOCK)
    assert type(info.value) is WinsockError
    assert info.value.winerror == errors.WSAENOTSOCK


def test_blocking_io_error_construction() -> None:
    err = WinsockError(errors.WSAEWOULDBLOCK)
    assert isinstance(err, BlockingIOError)
    assert err.winerror == 10035
    assert err.strerror.startswith("WSAEWOULDBLOCK: ")
    # Same as a plain BlockingIOError(errno, msg): nothing was recorded.
    with pytest.raises(AttributeError):
        err.characters_written  # noqa: B018
    err.characters_written = 0
    assert err.characters_written == 0
    direct = errors.WinsockBlockingIOError(errors.WSAEINPROGRESS, "WSPConnect")
    assert direct.winerror == errors.WSAEINPROGRESS


# --- attributes and text -----------------------------------------------------


def test_attributes() -> None:
    err = WinsockError(errors.WSAENOTSOCK, "WSPCloseSocket")
    assert err.winerror == 10038
    assert type(err.winerror) is int
    assert err.funcname == "WSPCloseSocket"
    assert err.strerror == "WSAENOTSOCK: " + errors.ERROR_MESSAGES[10038]
    assert err.strerror.startswith("WSAENOTSOCK: ")
    assert err.errno == errno.ENOTSOCK
    assert err.args == (10038, err.strerror)
    assert err.filename is None
    assert err.filename2 is None


def test_funcname_defaults_to_none() -> None:
    err = WinsockError(errors.WSAEINVAL)
    assert err.funcname is None
    assert WinsockError(errors.WSAEINVAL, funcname=None).funcname is None


def test_str_without_funcname() -> None:
    err = WinsockError(errors.WSAENOTSOCK)
    msg = errors.ERROR_MESSAGES[10038]
    assert str(err) == f"[WinError 10038] WSAENOTSOCK: {msg}"


def test_str_with_funcname() -> None:
    err = WinsockError(errors.WSAENOTSOCK, "WSPCloseSocket")
    msg = errors.ERROR_MESSAGES[10038]
    assert str(err) == f"WSPCloseSocket: [WinError 10038] WSAENOTSOCK: {msg}"


def test_str_of_subclass() -> None:
    err = WinsockError(errors.WSAECONNRESET, "WSPRecv")
    msg = errors.ERROR_MESSAGES[10054]
    assert str(err) == f"WSPRecv: [WinError 10054] WSAECONNRESET: {msg}"


def test_repr() -> None:
    assert repr(WinsockError(errors.WSAENOTSOCK)) == "WinsockError(WSAENOTSOCK)"
    assert (
        repr(WinsockError(errors.WSAENOTSOCK, "WSPCloseSocket"))
        == "WinsockError(WSAENOTSOCK, 'WSPCloseSocket')"
    )
    assert (
        repr(WinsockError(errors.WSAECONNRESET, "WSPRecv"))
        == "WinsockConnectionResetError(WSAECONNRESET, 'WSPRecv')"
    )
    assert repr(WinsockError(12345)) == "WinsockError(12345)"


def test_unknown_code() -> None:
    err = WinsockError(12345, "WSPIoctl")
    assert type(err) is WinsockError
    assert err.winerror == 12345
    assert err.errno is None
    assert err.strerror == "error 12345: unknown Winsock error"
    assert str(err) == "WSPIoctl: [WinError 12345] error 12345: unknown Winsock error"


def test_int_subclass_code_is_normalised() -> None:
    class Code(enum.IntEnum):
        NOTSOCK = 10038

    err = WinsockError(Code.NOTSOCK)
    assert type(err.winerror) is int
    assert err.winerror == 10038
    assert err.args[0] == 10038 and type(err.args[0]) is int


@pytest.mark.parametrize("bad", ["10038", 1.5, None, True, False, b"\x01", [10038]])
def test_non_int_code_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        WinsockError(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        errors.WinsockConnectionResetError(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1, b"WSPRecv", object()])
def test_non_str_funcname_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        WinsockError(errors.WSAEINVAL, bad)  # type: ignore[arg-type]


def test_missing_code_is_type_error() -> None:
    with pytest.raises(TypeError):
        WinsockError()  # type: ignore[call-arg]


# --- pickling and copying ------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "funcname"),
    [
        (errors.WSAENOTSOCK, "WSPCloseSocket"),
        (errors.WSAECONNRESET, "WSPRecv"),
        (errors.WSAEWOULDBLOCK, None),
        (errors.WSAETIMEDOUT, "WSPConnect"),
        (12345, None),
    ],
)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(code: int, funcname: str | None, protocol: int) -> None:
    err = WinsockError(code, funcname)
    back = pickle.loads(pickle.dumps(err, protocol=protocol))
    assert type(back) is type(err)
    assert back.winerror == code
    assert back.funcname == funcname
    assert back.errno == err.errno
    assert back.strerror == err.strerror
    assert back.args == err.args
    assert str(back) == str(err)


def test_pickle_keeps_extra_state() -> None:
    err = WinsockError(errors.WSAECONNRESET, "WSPRecv")
    # Assigned directly rather than via add_note() so this runs before 3.11.
    err.__notes__ = ["while draining the queue"]
    back = pickle.loads(pickle.dumps(err))
    assert back.__notes__ == ["while draining the queue"]


def test_copy() -> None:
    err = WinsockError(errors.WSAECONNREFUSED, "WSPConnect")
    dup = copy.copy(err)
    assert type(dup) is errors.WinsockConnectionRefusedError
    assert (dup.winerror, dup.funcname) == (errors.WSAECONNREFUSED, "WSPConnect")


def test_user_subclass_is_not_remapped() -> None:
    class MyError(WinsockError):
        pass

    err = MyError(errors.WSAECONNRESET)
    assert type(err) is MyError
    assert err.winerror == errors.WSAECONNRESET
