"""Checking the ``Authorization`` header of a request against the token."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

REALM_HEADER = b'Bearer realm="Security Agent"'


@dataclass(frozen=True)
class AuthFailure:
    status: int
    message: str


def check_authorization(header: bytes | None, token: bytes) -> AuthFailure | None:
    """None when ``header`` carries ``Bearer <token>``, else the answer to send.

    401 when there is no usable bearer credential (the client should authenticate), 403
    when the credential is wrong. The token comparison takes the same time whatever the
    candidate looks like, so the token cannot be guessed byte by byte.
    """
    if header is None:
        return AuthFailure(401, "no session token provided")
    scheme, _, credential = header.strip().partition(b" ")
    if not scheme:
        return AuthFailure(401, "authorization header is empty")
    if scheme.lower() != b"bearer":
        shown = scheme.decode("latin-1")
        return AuthFailure(401, f"unsupported authorization scheme: {shown}")
    if not hmac.compare_digest(credential.strip(), token):
        return AuthFailure(403, "invalid session token")
    return None
