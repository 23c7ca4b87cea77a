"""The 401/403/200 matrix on every path, known or not, with Python's ssl client and curl."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ipc_api_helpers import running_server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for read-only tests: starting one costs about a second."""
    yield from running_server(tmp_path_factory.mktemp("ipc") / "agent")


PATHS = [
    ("GET", "/agent/version"),
    ("GET", "/agent/status/health"),
    ("GET", "/agent/config"),
    ("POST", "/agent/stop"),
    ("POST", "/agent/flare"),
    ("POST", "/agent/config/log_level"),
    ("GET", "/agent/no/such/path"),
    ("GET", "/"),
]
REALM = 'Bearer realm="Security Agent"'


def _cases(token):
    return [
        (None, 401, "no session token provided", True),
        ("", 401, "authorization header is empty", True),
        ("Basic Zm9vOmJhcg==", 401, "unsupported authorization scheme: Basic", True),
        (f"Token {token}", 401, "unsupported authorization scheme: Token", True),
        ("Bearer " + "0" * 64, 403, "invalid session token", False),
        (f"Bearer {token[:-1]}", 403, "invalid session token", False),
        ("Bearer", 403, "invalid session token", False),
    ]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_matrix_with_python_ssl(shared_server, method, path):
    for auth, status, message, challenge in _cases(shared_server.token):
        code, headers, body = shared_server.request(method, path, auth=auth)
        assert (code, json.loads(body)) == (status, {"error": message}), auth
        assert headers["content-type"] == "application/json"
        assert (headers.get("www-authenticate") == REALM) is challenge
    assert shared_server.alive()


def _curl(server, path, *args):
    result = subprocess.run(
        [
            shutil.which("curl") or "curl",
            "--silent",
            "--show-error",
            "--cacert",
            str(server.cert),
            "--write-out",
            "\n%{http_code} %{ssl_verify_result}",
            *args,
            f"https://localhost:{server.port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, tail = result.stdout.rpartition("\n")
    code, verify = tail.split()
    return int(code), int(verify), body


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed")
def test_matrix_with_curl(shared_server):
    s = shared_server
    assert _curl(s, "/agent/version") == (401, 0, '{"error": "no session token provided"}')
    assert _curl(s, "/agent/version", "-H", "Authorization: Basic eDp5") == (
        401,
        0,
        '{"error": "unsupported authorization scheme: Basic"}',
    )
    assert _curl(s, "/agent/nope", "-H", "Authorization: Bearer " + "1" * 64) == (
        403,
        0,
        '{"error": "invalid session token"}',
    )
    auth = ("-H", f"Authorization: Bearer {s.token}")
    code, verify, body = _curl(s, "/agent/version", *auth)
    assert (code, verify, json.loads(body)["Major"]) == (200, 0, 0)
    assert _curl(s, "/agent/nope", *auth) == (404, 0, '{"error": "no such endpoint: /agent/nope"}')
    code, _, body = _curl(s, "/agent/config/log_level", *auth)
    assert (code, json.loads(body)) == (
        200,
        {"value": s.get_json("/agent/config/log_level")["value"]},
    )
    code, _, body = _curl(s, "/agent/test/echo/curl", *auth, "--data-binary", "hello")
    assert (code, json.loads(body)) == (200, {"name": "curl", "body": "hello"})
    code, _, _ = _curl(s, "/agent/version", *auth, "--tls-max", "1.2")
    assert code == 200
