"""``datadog_agent.read/write_persistent_cache``: small strings that survive restarts.

One file per key under ``<run_path>/checks_cache``, mode 0600 (a check may cache tokens),
written atomically so a crash never leaves half a value.
"""

from __future__ import annotations

import os
import re
import threading

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class PersistentCache:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def _path(self, key: str) -> str:
        # Datadog replaces ':' in keys; anything else unsafe in a file name goes too.
        return os.path.join(self.directory, _UNSAFE.sub("_", key))

    def write(self, key: str, value: str) -> None:
        path = self._path(key)
        with self._lock:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            temporary = f"{path}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
            os.replace(temporary, path)

    def read(self, key: str) -> str:
        """The stored value; ``""`` for a key never written."""
        try:
            with open(self._path(key), encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""
