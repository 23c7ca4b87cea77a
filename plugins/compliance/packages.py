"""Installed packages, read from the package managers' own databases (no subprocess).

dpkg: ``/var/lib/dpkg/status``; apk: ``/lib/apk/db/installed``; rpm: the SQLite database
``/var/lib/rpm/rpmdb.sqlite`` (RPM >= 4.16), whose ``Packages`` blobs are RPM headers.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "arch": self.arch}


def read_dpkg(path: str) -> Iterator[Package]:
    """Packages whose dpkg status is ``install ok installed``."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            yield Package(
                fields["Package"], fields.get("Version", ""), fields.get("Architecture", "")
            )


def read_apk(path: str) -> Iterator[Package]:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for stanza in text.split("\n\n"):
        fields = {
            line[0]: line[2:] for line in stanza.splitlines() if len(line) > 1 and line[1] == ":"
        }
        if fields.get("P"):
            yield Package(fields["P"], fields.get("V", ""), fields.get("A", ""))


_RPMTAG_NAME, _RPMTAG_VERSION, _RPMTAG_RELEASE, _RPMTAG_EPOCH, _RPMTAG_ARCH = (
    1000,
    1001,
    1002,
    1003,
    1022,
)
_RPM_STRING, _RPM_INT32 = 6, 4


def parse_rpm_header(blob: bytes) -> dict[int, str | int]:
    """The string and int32 tags of an RPM header blob (index count, data size, entries, data)."""
    il, dl = struct.unpack(">II", blob[:8])
    data = blob[8 + 16 * il : 8 + 16 * il + dl]
    tags: dict[int, str | int] = {}
    for n in range(il):
        tag, type_, offset, count = struct.unpack(">IIiI", blob[8 + 16 * n : 24 + 16 * n])
        if type_ == _RPM_STRING:
            end = data.index(b"\0", offset)
            tags[tag] = data[offset:end].decode("utf-8", "replace")
        elif type_ == _RPM_INT32 and count >= 1:
            tags[tag] = struct.unpack(">i", data[offset : offset + 4])[0]
    return tags


def read_rpm_sqlite(path: str) -> Iterator[Package]:
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        for (blob,) in conn.execute("SELECT blob FROM Packages"):
            tags = parse_rpm_header(bytes(blob))
            version = f"{tags.get(_RPMTAG_VERSION, '')}-{tags.get(_RPMTAG_RELEASE, '')}"
            if _RPMTAG_EPOCH in tags:
                version = f"{tags[_RPMTAG_EPOCH]}:{version}"
            yield Package(str(tags.get(_RPMTAG_NAME, "")), version, str(tags.get(_RPMTAG_ARCH, "")))
    finally:
        conn.close()


DATABASES: list[tuple[str, Callable[[str], Iterator[Package]]]] = [
    ("/var/lib/dpkg/status", read_dpkg),
    ("/lib/apk/db/installed", read_apk),
    ("/var/lib/rpm/rpmdb.sqlite", read_rpm_sqlite),
    ("/usr/lib/sysimage/rpm/rpmdb.sqlite", read_rpm_sqlite),
]
