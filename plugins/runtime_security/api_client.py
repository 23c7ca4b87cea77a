"""A small client for the agent's command API, used by ``runtime policy reload``,
``runtime self-test`` and ``runtime process-cache dump``.

It reads the same settings the API server does (``cmd_host``, ``security_agent.cmd_port``,
``auth_token_file_path`` or ``auth_token`` next to the config file) and speaks HTTPS with the
bearer token over loopback. Like Datadog's CLI it trusts the agent's self-signed certificate
from the run path when it can read it and otherwise does not verify it.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
from pathlib import Path
from typing import Any

DEFAULT_PORT = 5010
CERT_FILE = "ipc_api_cert.pem"
TIMEOUT = 30.0


class ApiError(Exception):
    """The agent could not be asked, or answered with an error; one line."""


def _host(config: Any) -> str:
    host = str(config.get("ipc_address", "") or config.get("cmd_host", "localhost") or "localhost")
    return "127.0.0.1" if host == "localhost" else host


def _token(config: Any, run_path: str) -> str:
    configured = str(config.get("auth_token_file_path", "") or "")
    directory = config.config_dir() or run_path
    path = Path(configured) if configured else Path(directory) / "auth_token"
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiError(
            f"{path}: cannot read the auth token: {getattr(exc, 'strerror', exc)}"
        ) from None


def _context(run_path: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cert = os.path.join(run_path, CERT_FILE)
    try:
        ctx.load_verify_locations(cafile=cert)
        return ctx
    except (OSError, ssl.SSLError):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx


def call(config: Any, run_path: str, method: str, path: str, timeout: float = TIMEOUT) -> Any:
    """Send one request and return the decoded JSON body; ``ApiError`` otherwise."""
    port = int(config.get("security_agent.cmd_port", DEFAULT_PORT) or DEFAULT_PORT)
    host = _host(config)
    token = _token(config, run_path)
    conn = http.client.HTTPSConnection(host, port, context=_context(run_path), timeout=timeout)
    try:
        conn.request(
            method,
            path,
            body=b"" if method == "POST" else None,
            headers={"Authorization": f"Bearer {token}"},
        )
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ApiError(f"cannot reach the agent at https://{host}:{port}: {exc}") from None
    finally:
        conn.close()
    try:
        data = json.loads(body or b"null")
    except ValueError:
        data = None
    if response.status != 200:
        message = data.get("error") if isinstance(data, dict) else None
        raise ApiError(str(message or body.decode("utf-8", "replace").strip() or response.status))
    return data
