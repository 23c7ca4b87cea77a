"""Kernel event sources for runtime security.

Every source implements ``Source`` (base.py): ``start(callback)``, ``stop()``, ``stats()``.
Kernel sources call ``callback(event)`` from their own daemon reader thread; events are plain
nested dicts mirroring SECL field names plus ``type``, ``timestamp`` and ``source``.

- ProcessSource (cn_proc) + ProcessCache: exec, fork, exit, setuid, setgid
- FileSource (fanotify FID filesystem marks, inotify fallback): open, mkdir, rmdir, unlink,
  rename, modify, close_write, attrib, open_exec
- AuditSource (audit netlink): chmod, chown, unlink, rmdir, mkdir, rename, link, utimes,
  setuid, setgid, ptrace, load_module, connect, bind, mount
- ReplaySource / read_events: JSON-lines files
- EventStreamServer / serve_events (privileged process) and EventListener (agent side) for
  the event-monitoring unix socket
"""

from __future__ import annotations

from .audit_source import AuditSource
from .base import Callback, Event, Source, SourceStats, SourceUnavailable
from .event_listener import EventListener
from .event_stream_server import EventStreamServer, serve_events
from .file_source import FileSource
from .process_cache import ProcessCache, is_unresolved
from .process_source import ProcessSource
from .replay_source import ReplayError, ReplaySource, read_events

__all__ = [
    "AuditSource",
    "Callback",
    "Event",
    "EventListener",
    "EventStreamServer",
    "FileSource",
    "ProcessCache",
    "ProcessSource",
    "ReplayError",
    "ReplaySource",
    "Source",
    "SourceStats",
    "SourceUnavailable",
    "is_unresolved",
    "read_events",
    "serve_events",
]
