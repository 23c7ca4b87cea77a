"""Uploading a flare to a test intake on loopback (dd_url points there)."""

from __future__ import annotations

import http.server
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from typing import ClassVar

import pytest
from support import FakeReactor, make_agent

from plugins.flare import FlareUploadError, send_flare
from plugins.flare.upload import flare_url


class Intake(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    answer: tuple[int, bytes] = (200, b'{"case_id": 1234}')

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
        )
        form = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()
        }
        type(self).received.append(
            {"path": self.path, "key": self.headers["DD-API-KEY"], "form": form}
        )
        status, payload = type(self).answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def intake():
    Intake.received = []
    Intake.answer = (200, b'{"case_id": 1234}')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Intake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def agent_for(tmp_path, dd_url, api_key="0123456789abcdef0123456789abcdef"):
    from support import entry_point, plugin_module

    schema = plugin_module(
        "keys",
        security_agent_config_schema=lambda schema: (
            schema.declare("dd_url", ""),
            schema.declare("site", "datadoghq.com"),
        ),
    )
    return make_agent(
        FakeReactor(),
        [entry_point("keys", schema)],
        f"dd_url: {dd_url}\napi_key: {api_key}\n",
        tmp_path=tmp_path,
    )


def test_flare_is_uploaded_as_a_multipart_form(tmp_path, intake):
    archive = tmp_path / "security-agent-flare-x.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    agent = agent_for(tmp_path, intake)
    line = send_flare(agent, archive, "98765", "ops@example.com")
    assert line == (
        "Your logs were successfully uploaded. For future reference, your internal case id is 1234"
    )
    (sent,) = Intake.received
    assert sent["path"] == "/support/flare/98765"
    assert sent["key"] == "0123456789abcdef0123456789abcdef"
    assert sent["form"]["flare_file"] == b"PK\x03\x04 not really a zip"
    assert sent["form"]["case_id"] == b"98765"
    assert sent["form"]["email"] == b"ops@example.com"
    assert sent["form"]["source"] == b"security-agent"
    assert sent["form"]["hostname"] == agent.hostname.encode()


def test_refusals_are_one_line_errors(tmp_path, intake):
    archive = tmp_path / "f.zip"
    archive.write_bytes(b"zip")
    agent = agent_for(tmp_path, intake)
    Intake.answer = (403, b"{}")
    with pytest.raises(FlareUploadError) as exc:
        send_flare(agent, archive, None, None)
    assert str(exc.value) == (
        f"HTTP 403 Forbidden from {intake}/support/flare: make sure your API key is valid"
    )
    Intake.answer = (200, json.dumps({"error": "case 1 is closed"}).encode())
    with pytest.raises(FlareUploadError, match=r"^the flare was refused: case 1 is closed$"):
        send_flare(agent, archive, "1", None)


def test_no_api_key_and_unreachable_intake(tmp_path):
    archive = tmp_path / "f.zip"
    archive.write_bytes(b"zip")
    with pytest.raises(FlareUploadError, match="no api_key is configured"):
        send_flare(agent_for(tmp_path, "http://127.0.0.1:9", api_key="''"), archive, None, None)
    with pytest.raises(FlareUploadError, match=r"^could not reach http://127\.0\.0\.1:9/support"):
        send_flare(agent_for(tmp_path, "http://127.0.0.1:9"), archive, None, None)


def test_default_url_follows_the_site(tmp_path):
    agent = agent_for(tmp_path, "''")
    assert flare_url(agent, "12") == "https://0-1-0-flare.agent.datadoghq.com/support/flare/12"
