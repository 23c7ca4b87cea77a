"""Hypothesis throws odd paths, methods and headers at a live server: answers are 4xx only
(unauthenticated) or a normal answer (authenticated), and the server stays up."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipc_api_helpers import client_context, running_server

from plugins.ipc_api.routes import split_path

path_chars = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#")
paths = st.one_of(
    st.text(path_chars, max_size=60).map(lambda p: "/" + p),
    st.lists(
        st.sampled_from(
            [
                "agent",
                "config",
                "status",
                "..",
                "%2e",
                "{setting}",
                "%00",
                "log_level",
                "health",
                "",
                "flare",
            ]
        ),
        max_size=6,
    ).map(lambda parts: "/" + "/".join(parts)),
)
header_names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
    min_size=1,
    max_size=20,
)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FOO"])


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for read-only tests: starting one costs about a second."""
    yield from running_server(tmp_path_factory.mktemp("ipc") / "agent")


def _target(path):
    return tuple(unquote(p, errors="replace") for p in split_path(path))


def _raw_request(server, request_bytes):
    ctx = client_context(server.cert)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=20) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(request_bytes)
        data = b""
        while b"\r\n" not in data:
            try:
                chunk = tls.recv(4096)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    return data


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=methods,
    path=paths,
    headers=st.dictionaries(header_names, header_values, max_size=5),
    authorization=st.one_of(st.none(), header_values),
)
def test_unauthenticated_fuzz_gets_only_4xx(shared_server, method, path, headers, authorization):
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [
        f"{k}: {v}"
        for k, v in headers.items()
        if k.lower()
        not in ("authorization", "content-length", "transfer-encoding", "host", "connection")
    ]
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    data = _raw_request(shared_server, ("\r\n".join(lines) + "\r\n\r\n").encode())
    status_line = data.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 4"), (status_line, lines)
    assert shared_server.alive()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=methods, path=paths)
def test_authenticated_fuzz_of_paths_never_errors(shared_server, method, path):
    conn = http.client.HTTPSConnection(
        "127.0.0.1", shared_server.port, timeout=20, context=client_context(shared_server.cert)
    )
    try:
        if method == "POST" and _target(path) == ("agent", "stop"):
            return  # a real stop would end the shared server
        conn.request(method, path, headers={"Authorization": f"Bearer {shared_server.token}"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status < 500 or _target(path) == ("agent", "test", "boom"), (resp.status, body)
    if resp.status >= 400 and method != "HEAD":
        assert set(json.loads(body)) == {"error"}
    assert shared_server.alive()
