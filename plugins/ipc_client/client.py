"""The CLI's client for the command API: stdlib ``http.client`` over TLS with the token.

The server's certificate is self-signed; the client trusts exactly the certificate file in
the run path when it can read it (so a process squatting on the port cannot pose as the
agent), and otherwise connects without verification, as Datadog's CLI always does.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from plugins.ipc_client.address import ListenAddress
from plugins.ipc_client.auth_token import read_token

DEFAULT_TIMEOUT = 60.0


class UnreachableError(Exception):
    """The agent could not be asked (not running, refused, TLS failure, no token)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def error_message(self) -> str:
        """The ``{"error": ...}`` message of an error body, else the body itself."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return self.text.strip()
        if isinstance(data, dict) and "error" in data:
            return str(data["error"])
        return self.text.strip()


def client_context(cert_path: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_path is not None:
        try:
            ctx.load_verify_locations(cafile=str(cert_path))
            return ctx
        except (OSError, ssl.SSLError):
            pass
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class IpcClient:
    def __init__(
        self,
        address: ListenAddress,
        token_file: Path,
        cert_path: Path | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.address = address
        self.token_file = token_file
        self.cert_path = cert_path
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
    ) -> Reply:
        try:
            token = read_token(self.token_file)
        except ValueError as exc:
            raise UnreachableError(str(exc)) from None
        headers = {"Authorization": f"Bearer {token}"}
        body: bytes | None = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if query:
            path = f"{path}?{urlencode(query)}"
        conn = http.client.HTTPSConnection(
            self.address.client_host,
            self.address.port,
            timeout=self.timeout,
            context=client_context(self.cert_path),
        )
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return Reply(response.status, response.read())
        except (OSError, http.client.HTTPException) as exc:
            raise UnreachableError(_describe(exc, self.address)) from None
        finally:
            conn.close()


def _describe(exc: BaseException, address: ListenAddress) -> str:
    where = f"https://{address.client_host}:{address.port}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused on {where}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error talking to {where}: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"timed out talking to {where}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({where})"
    return f"{exc} ({where})"
