"""Pure logic: the Authorization check, the route table, the listen address, versions."""

from __future__ import annotations

import pytest

from host import ApiResponse, ApiRoute
from plugins.ipc_api.auth import check_authorization
from plugins.ipc_api.endpoints import version_struct
from plugins.ipc_api.routes import DuplicateRouteError, RouteTable
from plugins.ipc_client.address import loopback_interface

TOKEN = b"a" * 64


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (401, "no session token provided")),
        (b"", (401, "authorization header is empty")),
        (b"   ", (401, "authorization header is empty")),
        (b"Basic dXNlcjpwYXNz", (401, "unsupported authorization scheme: Basic")),
        (b"Token " + TOKEN, (401, "unsupported authorization scheme: Token")),
        (b"Bearer", (403, "invalid session token")),
        (b"Bearer " + b"b" * 64, (403, "invalid session token")),
        (b"Bearer " + TOKEN[:-1], (403, "invalid session token")),
        (b"Bearer " + TOKEN + b"x", (403, "invalid session token")),
        (b"Bearer \xff\xfe", (403, "invalid session token")),
    ],
)
def test_authorization_failures(header, expected):
    failure = check_authorization(header, TOKEN)
    assert failure is not None
    assert (failure.status, failure.message) == expected


@pytest.mark.parametrize("header", [b"Bearer " + TOKEN, b"bearer " + TOKEN, b"Bearer  " + TOKEN])
def test_authorization_accepted(header):
    assert check_authorization(header, TOKEN) is None


def _route(path, methods=("GET",)):
    return ApiRoute(path, methods, lambda r: ApiResponse())


def test_routes_match_literal_before_parameter():
    table = RouteTable()
    table.add(_route("/agent/config/{setting}", ("GET", "POST")), "ipc_api")
    table.add(_route("/agent/config/list-runtime"), "ipc_api")
    table.add(_route("/agent/config"), "ipc_api")
    assert table.match("/agent/config/list-runtime").entry.route.path == (
        "/agent/config/list-runtime"
    )
    m = table.match("/agent/config/log%5Flevel")
    assert m.entry.route.path == "/agent/config/{setting}"
    assert m.params == {"setting": "log_level"}
    assert table.match("/agent/config/").entry.route.path == "/agent/config"
    assert table.match("/agent/config/a/b") is None
    assert table.match("/") is None


def test_duplicate_route_shape_is_refused_with_owner():
    table = RouteTable()
    table.add(_route("/agent/x/{name}"), "one")
    with pytest.raises(
        DuplicateRouteError, match=r"^route /agent/x/\{id\} is already provided by one$"
    ):
        table.add(_route("/agent/x/{id}", ("POST",)), "two")
    with pytest.raises(ValueError, match="must start with '/'"):
        table.add(_route("agent/y"), "two")
    assert len(table) == 1


@pytest.mark.parametrize(
    ("value", "interface"),
    [
        ("localhost", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.8.9.10", "127.8.9.10"),
        ("::1", "::1"),
    ],
)
def test_loopback_addresses(value, interface):
    assert loopback_interface("cmd_host", value) == interface


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.1.2.3", "cmd_host: address was set to a non-loopback IP address: 10.1.2.3"),
        ("0.0.0.0", "cmd_host: address was set to a non-loopback IP address: 0.0.0.0"),
        ("::", "cmd_host: address was set to a non-loopback IP address: ::"),
        ("example.com", "cmd_host: address was set to an invalid IP address: example.com"),
        ("", "cmd_host: address was set to an invalid IP address: "),
    ],
)
def test_non_loopback_addresses_refused(value, message):
    with pytest.raises(ValueError, match="address was set to") as info:
        loopback_interface("cmd_host", value)
    assert str(info.value) == message


def test_version_struct():
    assert version_struct("7.50.1rc2+git.3") == {
        "Major": 7,
        "Minor": 50,
        "Patch": 1,
        "Pre": "rc2",
        "Meta": "git.3",
        "Commit": "",
    }
    assert version_struct("0.1.0") == {
        "Major": 0,
        "Minor": 1,
        "Patch": 0,
        "Pre": "",
        "Meta": "",
        "Commit": "",
    }
