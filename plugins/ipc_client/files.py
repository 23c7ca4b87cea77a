"""Where the command API keeps its certificate: the server writes it, clients verify with it."""

from __future__ import annotations

from pathlib import Path

CERT_FILE = "ipc_api_cert.pem"
KEY_FILE = "ipc_api_key.pem"


def cert_paths(run_path: str) -> tuple[Path, Path]:
    return Path(run_path) / CERT_FILE, Path(run_path) / KEY_FILE
