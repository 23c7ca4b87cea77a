"""The bearer token every API request carries: where it lives, fetching it, creating it once.

The file is shared by the daemon and every CLI invocation. Two processes starting together
must end up with the same token, so a new token is written to a private temporary file and
``link``-ed into place: ``link`` never replaces an existing file, so exactly one writer wins
and the others read the winner's token.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from twisted.logger import Logger

if TYPE_CHECKING:
    from host.config import Config

log = Logger(namespace="ipc_api")

TOKEN_PATH_KEY = "auth_token_file_path"
TOKEN_FILE_NAME = "auth_token"
MIN_TOKEN_LENGTH = 32
TOKEN_BYTES = 32


class AuthTokenError(ValueError):
    """The token file cannot be used; the message is one line for the operator."""


def token_path(config: Config, run_path: str) -> Path:
    """``auth_token_file_path``, else ``auth_token`` next to the last config file loaded,
    else in the run path (no config file at all)."""
    configured = config.get_str(TOKEN_PATH_KEY)
    if configured:
        return Path(configured)
    directory = config.config_dir() or run_path
    return Path(directory) / TOKEN_FILE_NAME


def validate_token(token: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise AuthTokenError(
            "invalid authentication token: must be at least 32 characters in length"
        )
    return token


def read_token(path: Path) -> str:
    """Read and validate an existing token; warn when others may read it."""
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        raise AuthTokenError(f"{path}: the auth token is not ASCII text") from None
    except OSError as exc:
        raise AuthTokenError(f"{path}: cannot read the auth token: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warn(
            "The auth token file {path} is accessible by group or others (mode {mode}); "
            "restrict it with chmod 600",
            path=str(path),
            mode=oct(stat.S_IMODE(mode)),
        )
    return validate_token(token)


def _write_new(path: Path) -> bool:
    """Try to install a fresh token at ``path``; False when another process got there first."""
    token = secrets.token_hex(TOKEN_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, token.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def fetch_or_create_token(path: Path) -> str:
    """The token at ``path``, created (64 hex characters, mode 0600) when the file is absent.

    Raises :class:`AuthTokenError` for a token that is too short or a file that cannot be
    read or written.
    """
    if not path.exists():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            created = _write_new(path)
        except OSError as exc:
            raise AuthTokenError(
                f"{path}: cannot create the auth token: {exc.strerror or exc}"
            ) from None
        if created:
            log.info("Created a new auth token in {path}", path=str(path))
    return read_token(path)
