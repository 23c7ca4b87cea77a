"""Every endpoint of a real agent process over TLS, with Python's ssl client."""

from __future__ import annotations

import json
import socket
import ssl
import stat
import subprocess
import time

import pytest
from ipc_api_helpers import client_context, running_server, start_server, stop_process


@pytest.fixture
def served(tmp_path):
    yield from running_server(tmp_path / "agent")


def test_version_hostname_health(served):
    assert served.get_json("/agent/version") == {
        "Major": 0,
        "Minor": 1,
        "Patch": 0,
        "Pre": "",
        "Meta": "",
        "Commit": "",
    }
    assert served.get_json("/agent/hostname") == socket.gethostname()
    health = served.get_json("/agent/status/health")
    assert set(health) == {"Healthy", "Unhealthy"}
    assert "ipc_api" in health["Healthy"] + health["Unhealthy"]


def test_health_turns_healthy_and_is_always_200(served):
    deadline = time.monotonic() + 10
    while True:
        status, headers, body = served.request("GET", "/agent/status/health")
        assert status == 200
        assert headers["content-type"] == "application/json"
        health = json.loads(body)
        if "ipc_api" in health["Healthy"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert health["Healthy"][0] == "healthcheck"
    assert "ipc_api" in health["Healthy"]


def test_status_json_and_text(served):
    status = served.get_json("/agent/status?format=json")
    assert status["header"]["version"] == "0.1.0"
    section = status["sections"]["ipcApi"]
    assert section["title"] == "Command API"
    assert section["data"]["port"] == served.port
    assert section["data"]["refused_routes"] == [
        "plugin ipc_test_routes: route /agent/hostname is already provided by ipc_api; refused"
    ]
    code, headers, body = served.request("GET", "/agent/status?format=text")
    assert code == 200
    assert headers["content-type"] == "text/plain; charset=utf-8"
    text = body.decode()
    assert "Command API\n===========\n" in text
    assert f"  Listening on: https://127.0.0.1:{served.port}\n" in text
    code, _, body = served.request("GET", "/agent/status?format=xml")
    assert (code, json.loads(body)) == (400, {"error": "unknown format 'xml': use json or text"})


def test_config_is_scrubbed_yaml(served):
    code, headers, body = served.request("GET", "/agent/config")
    assert code == 200
    assert headers["content-type"] == "text/yaml; charset=utf-8"
    assert 'api_key: "********"' in body.decode()
    assert "cmd_host: localhost\n" in body.decode()
    code, _, body = served.request("GET", "/agent/config/by-source")
    text = body.decode()
    assert code == 200
    assert text.startswith("agent-runtime: {}\ncli: {}\ndefault:\n")
    assert "\nfile:\n  cmd_host: localhost\n" in text


def test_list_runtime_and_get_setting(served):
    assert served.get_json("/agent/config/list-runtime") == {
        "log_level": {
            "Description": "Set/get the log level, valid values are: trace, debug, info, "
            "warn, error, critical and off",
            "Hidden": False,
        }
    }
    assert served.get_json("/agent/config/log_level") == {"value": "info"}
    assert served.get_json("/agent/config/log_level?sources=true") == {
        "value": "info",
        "sources_value": {"default": "info"},
    }
    code, _, body = served.request("GET", "/agent/config/nope")
    assert (code, json.loads(body)) == (400, {"error": "setting nope not found"})


def _debug_lines(served):
    return served.log.read_text().count("probe debug line")


def test_set_log_level_takes_effect_at_once(served):
    served.get_json("/agent/test/debug-line?n=1")
    assert _debug_lines(served) == 0
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    code, _, body = served.request(
        "POST", "/agent/config/log_level", body=b"value=debug", headers=form
    )
    assert (code, body) == (200, b"")
    served.get_json("/agent/test/debug-line?n=2")
    assert "probe debug line 2" in served.log.read_text()
    assert served.get_json("/agent/config/log_level?sources=true") == {
        "value": "debug",
        "sources_value": {"default": "info", "cli": "debug"},
    }
    code, _, body = served.request(
        "POST", "/agent/config/log_level", body=b"value=loud", headers=form
    )
    assert code == 400
    assert "loud" in json.loads(body)["error"]
    code, _, body = served.request("POST", "/agent/config/log_level", body=b"", headers=form)
    assert (code, json.loads(body)) == (400, {"error": "the form field 'value' is required"})
    code, _, body = served.request("POST", "/agent/config/nope", body=b"value=1", headers=form)
    assert (code, json.loads(body)) == (400, {"error": "setting nope not found"})
    assert served.get_json("/agent/config/log_level") == {"value": "debug"}


def test_workload_list(served):
    assert served.get_json("/agent/workload-list?verbose=false") == {
        "entities": {"process": {"infos": {"1": {"pid": 1, "name": "init"}}}},
        "refreshes": 1,
    }
    verbose = served.get_json("/agent/workload-list?verbose=true")
    assert verbose["entities"]["process"]["infos"]["1"]["cmdline"] == ["/sbin/init"]
    code, _, body = served.request("GET", "/agent/workload-list?verbose=maybe")
    assert (code, json.loads(body)) == (
        400,
        {"error": "verbose must be true or false, got 'maybe'"},
    )


def test_flare_success_and_failure(served):
    code, _, body = served.request("POST", "/agent/flare")
    assert (code, body.decode()) == (200, str(served.dir / "flare-agent.zip"))
    (served.dir / "flare-fails").touch()
    code, _, body = served.request("POST", "/agent/flare")
    assert (code, json.loads(body)) == (500, {"error": "disk full"})


def test_method_path_size_and_handler_errors(served):
    code, headers, body = served.request("POST", "/agent/version")
    assert (code, headers["allow"], json.loads(body)) == (
        405,
        "GET",
        {"error": "method POST not allowed on /agent/version"},
    )
    code, headers, _ = served.request("DELETE", "/agent/config/log_level")
    assert (code, headers["allow"]) == (405, "GET, POST")
    code, _, body = served.request("GET", "/agent/unknown/thing")
    assert (code, json.loads(body)) == (404, {"error": "no such endpoint: /agent/unknown/thing"})
    code, _, body = served.request("POST", "/agent/test/echo/x", body=b"a" * (1024 * 1024 + 1))
    assert (code, json.loads(body)) == (413, {"error": "request body over 1048576 bytes"})
    code, _, body = served.request("POST", "/agent/test/echo/x%20y", body=b"a" * 1024)
    assert (code, json.loads(body)) == (200, {"name": "x y", "body": "a" * 1024})
    code, _, body = served.request("GET", "/agent/test/boom")
    assert (code, json.loads(body)) == (500, {"error": "handler exploded"})
    assert served.get_json("/agent/hostname") == socket.gethostname()  # not the duplicate's
    assert served.alive()
    counts = served.get_json("/agent/status")["sections"]["ipcApi"]["data"]["requests"]
    assert counts["405"] == 2
    assert counts["404"] == 1
    assert counts["413"] == 1
    assert counts["500"] == 1


def test_tls_versions_and_certificate_names(served):
    for host in ("127.0.0.1", "localhost"):
        ctx = client_context(served.cert)
        with (
            socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.version() == "TLSv1.3"
    ctx = client_context(served.cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.2"
    tls11 = subprocess.run(
        # SECLEVEL=0 so that the refusal comes from the server, not from the local OpenSSL.
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{served.port}",
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert tls11.returncode == 1
    assert b"tlsv1 alert protocol version" in tls11.stdout + tls11.stderr
    ctx = client_context(served.cert)
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ctx.wrap_socket(raw, server_hostname="example.com")
    assert served.alive()


def test_plain_http_gets_no_answer(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw:
        raw.sendall(b"GET /agent/version HTTP/1.1\r\nHost: x\r\n\r\n")
        data = raw.recv(1024)
    assert not data.startswith(b"HTTP/")
    assert served.alive()


def test_keep_alive_serves_many_requests_on_one_connection(served):
    conn = served.connect()
    for _ in range(50):
        conn.request(
            "GET", "/agent/status/health", headers={"Authorization": f"Bearer {served.token}"}
        )
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200


def test_stop_answers_then_exits_zero_and_certificate_is_reused(tmp_path):
    served = start_server(tmp_path / "agent")
    try:
        first_cert = served.cert.read_bytes()
        key = served.cert.with_name("ipc_api_key.pem")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE((served.dir / "auth_token").stat().st_mode) == 0o600
        code, _, body = served.request("POST", "/agent/stop")
        assert (code, json.loads(body)) == (200, "")
        assert served.proc.wait(timeout=20) == 0
        log = served.log.read_text()
        assert "Stop requested through the API" in log
        assert "Plugin ipc_api stopped" in log
        assert "See ya!" in log
        assert "Traceback" not in log + served.stderr.read_text()
        again = start_server(tmp_path / "agent")
        try:
            assert again.cert.read_bytes() == first_cert
            assert again.token == served.token
            assert again.get_json("/agent/hostname") == socket.gethostname()
        finally:
            stop_process(again.proc)
    finally:
        stop_process(served.proc)


def test_chunked_body_over_the_limit_gets_413(served):
    ctx = client_context(served.cert)
    chunk = b"b" * 65536
    head = (
        "POST /agent/test/echo/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        f"Authorization: Bearer {served.token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=20) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(head)
        for _ in range(17):  # 17 x 64 KiB > 1 MiB
            tls.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        tls.sendall(b"0\r\n\r\n")
        data = b""
        while True:
            part = tls.recv(65536)
            if not part:
                break
            data += part
    assert data.startswith(b"HTTP/1.1 413 ")
    assert data.endswith(b'{"error": "request body over 1048576 bytes"}')
    assert served.alive()
