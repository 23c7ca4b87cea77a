"""Sending a flare archive to Datadog support (``security-agent flare [CASE_ID] -s``).

The archive goes as a multipart form to ``<base>/support/flare[/<case id>]`` with the API key
in ``DD-API-KEY``. ``<base>`` is ``dd_url`` when set (a proxy, or a test intake), else the
version-prefixed flare host of the configured ``site``, as the Datadog Agent does. Blocking:
the CLI calls it directly; the agent would call it from its worker pool.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib import error, request

if TYPE_CHECKING:
    from host.agent import Agent

DEFAULT_SITE = "datadoghq.com"
UPLOAD_TIMEOUT = 60.0


class FlareUploadError(Exception):
    """The flare could not be sent; the message says why in one line."""


def flare_url(agent: Agent, case_id: str | None) -> str:
    config = agent.config
    base = str(config.get("dd_url") or "").rstrip("/")
    if not base:
        site = str(config.get("site") or DEFAULT_SITE)
        base = f"https://{agent.version.replace('.', '-')}-flare.agent.{site}"
    return f"{base}/support/flare/{case_id}" if case_id else f"{base}/support/flare"


def _multipart(fields: dict[str, str], archive: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="flare_file"; '
        f'filename="{archive.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + archive.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def send_flare(agent: Agent, archive: Path, case_id: str | None, email: str | None) -> str:
    """Upload ``archive``; return the line to show the user, or raise FlareUploadError."""
    api_key = str(agent.config.get("api_key") or "")
    if not api_key:
        raise FlareUploadError("no api_key is configured, so the flare cannot be uploaded")
    fields = {
        "source": "security-agent",
        "hostname": agent.hostname,
        "agent_version": agent.version,
    }
    if case_id:
        fields["case_id"] = case_id
    if email:
        fields["email"] = email
    body, content_type = _multipart(fields, archive)
    url = flare_url(agent, case_id)
    req = request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": content_type, "DD-API-KEY": api_key},
    )  # fmt: skip
    try:
        with request.urlopen(req, timeout=UPLOAD_TIMEOUT) as response:
            payload = response.read()
    except error.HTTPError as exc:
        if exc.code == 403:
            raise FlareUploadError(
                f"HTTP 403 Forbidden from {url}: make sure your API key is valid"
            ) from None
        raise FlareUploadError(f"HTTP {exc.code} {exc.reason} from {url}") from None
    except (error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FlareUploadError(f"could not reach {url}: {reason}") from None
    try:
        answer = json.loads(payload or b"{}")
    except ValueError:
        raise FlareUploadError(f"unexpected answer from {url}: {payload[:200]!r}") from None
    if answer.get("error"):
        raise FlareUploadError(f"the flare was refused: {answer['error']}")
    case = answer.get("case_id", case_id)
    return (
        "Your logs were successfully uploaded. For future reference, your internal case id is "
        f"{case}"
    )
