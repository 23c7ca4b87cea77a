"""Writing the flare zip: every file scrubbed, the archive readable by its owner only."""

from __future__ import annotations

import os
import re
import time
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.flare import contents as parts
from plugins.scrubber import Scrubber

if TYPE_CHECKING:
    from host.agent import Agent

ARCHIVE_MODE = 0o600
FLARE_DIR_MODE = 0o700
ERRORS_FILE = "flare_errors.log"
LOCAL_MARKER = "local"
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")
_ZIP_EPOCH = 315532800  # 1980-01-01: zip timestamps cannot be older


def archive_stem(hostname: str, when: float) -> str:
    """``security-agent-flare-<hostname>-<UTC YYYYmmddTHHMMSSZ>`` for a time in seconds."""
    host = _UNSAFE_IN_NAME.sub("_", hostname) or "unknown"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    return f"security-agent-flare-{host}-{stamp}"


def create_archive(agent: Agent, *, local: bool = False, out_dir: Path | None = None) -> Path:
    """Build a flare zip of ``agent`` and return its path. Blocking: run it in
    ``agent.workers``.

    The zip (mode 0600) goes to ``out_dir``, by default ``<run_path>/flares`` (created 0700),
    and is named ``security-agent-flare-<hostname>-<UTC YYYYmmddTHHMMSSZ>.zip`` (``-2``, ``-3``
    for more in the same second; the time is the reactor's). Inside, one folder named like the
    zip holds the log file and its rotations, every loaded config file, the effective config,
    status (JSON and text), health, expvar, runtime settings, plugins with their versions,
    ``DD_*`` environment, policy and benchmark folders (symlinks skipped), system information,
    plugins' own files, ``local`` when ``local`` is true (built by the CLI because the agent
    could not be reached) and ``flare_errors.log``, which lists what could not be collected.
    Every file goes through :mod:`plugins.scrubber`. Raises ``OSError`` only when the archive
    itself cannot be written; a partial archive is removed.
    """
    when = float(agent.reactor.seconds())
    contents = parts.Contents()
    if local:
        contents.add(LOCAL_MARKER, b"")
    steps: list[tuple[str, Callable[[], None]]] = [
        ("status and plugin files", partial(parts.add_host_files, contents, agent)),
        ("logs", partial(parts.add_logs, contents, agent)),
        ("config files", partial(parts.add_config_files, contents, agent)),
        ("effective config", partial(parts.add_effective_config, contents, agent)),
        ("health", partial(parts.add_health, contents, agent)),
        ("expvar", partial(parts.add_expvar, contents, agent)),
        ("policy and benchmark folders", partial(parts.add_directories, contents, agent)),
        ("environment", partial(parts.add_environment, contents, os.environ)),
        ("system information", partial(parts.add_system_info, contents)),
    ]
    for what, step in steps:
        try:
            step()
        except Exception as error:  # a collector bug must not cost the other parts
            contents.error(f"{what}: {type(error).__name__}: {error}")
    errors = "".join(f"{message}\n" for message in contents.errors)
    contents.files[ERRORS_FILE] = errors.encode()

    directory = Path(out_dir) if out_dir is not None else Path(agent.run_path) / "flares"
    _make_private_dir(directory)
    stem = archive_stem(agent.hostname, when)
    return _write_zip(directory, stem, contents.files, when)


def _make_private_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.mkdir(mode=FLARE_DIR_MODE, parents=True, exist_ok=True)
    directory.chmod(FLARE_DIR_MODE)  # mkdir's mode is filtered by the umask


def _scrub(scrubber: Scrubber, name: str, data: bytes) -> bytes:
    if name == LOCAL_MARKER:
        return data
    if name.endswith((".yaml", ".yml")):
        text = data.decode("utf-8", "surrogateescape")
        return scrubber.scrub_yaml(text).encode("utf-8", "surrogateescape")
    if name.endswith(".json"):
        text = data.decode("utf-8", "surrogateescape")
        return (scrubber.scrub_json(text) + "\n").encode("utf-8", "surrogateescape")
    return scrubber.scrub_bytes(data)


def _write_zip(directory: Path, stem: str, files: dict[str, bytes], when: float) -> Path:
    scrubber = Scrubber()
    date_time = time.gmtime(max(when, _ZIP_EPOCH))[:6]
    # Two flares in the same second get -2, -3...; O_EXCL so none overwrites another.
    suffix = 1
    while True:
        name = stem if suffix == 1 else f"{stem}-{suffix}"
        path = directory / f"{name}.zip"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, ARCHIVE_MODE)
        except FileExistsError:
            suffix += 1
            continue
        break
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            os.fchmod(raw.fileno(), ARCHIVE_MODE)  # the umask may have narrowed it, never widened
            for entry in sorted(files):
                info = zipfile.ZipInfo(f"{name}/{entry}", date_time=date_time)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100000 | ARCHIVE_MODE) << 16
                zf.writestr(info, _scrub(scrubber, entry, files[entry]))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
