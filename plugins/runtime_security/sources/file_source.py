"""File events: fanotify filesystem marks in FID mode (with the acting pid), or recursive
inotify watches (no pid) when fanotify is refused or ``backend="inotify"`` is asked for.

Event types and their SECL parts (``file`` has path, name, mode, uid, gid, inode, read with
lstat after the event, zeros when the file is already gone):

- ``open`` (``open.file``, ``open.flags`` 0: fanotify does not say how it was opened);
  a newly created regular file is also reported as ``open`` with ``open.flags`` = O_CREAT,
  the shape Datadog's self-test rule expects
- ``mkdir`` / ``rmdir`` / ``unlink`` (``<type>.file``)
- ``rename`` (``rename.file`` and ``rename.file.destination``)
- ``modify``, ``close_write``, ``attrib`` and ``open_exec`` (``<type>.file``): the fanotify
  events SECL has no type for, named after the kernel event
Events are filtered to paths under the watched prefixes and exclude this process's own.

Cost on a busy host (what Datadog does in eBPF, done with fanotify marks): ``restrict`` narrows
the kernel mask to the event types a rule set can match (no rule names ``open_exec``,
``modify``, ``close_write`` or ``attrib``, so a restricted source stops asking for them), and
with fanotify, files outside the watched paths and files no rule can match (``discard``) get
discarders: the kernel stops queueing their per-file events.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any, Protocol

from .base import Event, Source, SourceUnavailable
from .fanotify_backend import (
    DEFAULT_MASK,
    FAN_ATTRIB,
    FAN_CLOSE_WRITE,
    FAN_CREATE,
    FAN_DELETE,
    FAN_MODIFY,
    FAN_MOVED_FROM,
    FAN_MOVED_TO,
    FAN_ONDIR,
    FAN_OPEN,
    FAN_OPEN_EXEC,
    FAN_RENAME,
    MAX_DISCARDERS,
    PER_FILE_EVENTS,
    Fanotify,
    RawFileEvent,
)
from .inotify_backend import Inotify
from .process_cache import ProcessCache

O_CREAT = 0o100
# The names operators use (runtime_security_config.fim.events) for the kernel events the
# file source asks for. "rename" covers the moved_from/moved_to pair of kernels before 5.17.
EVENT_BITS = MappingProxyType(
    {
        "open": FAN_OPEN,
        "open_exec": FAN_OPEN_EXEC,
        "modify": FAN_MODIFY,
        "close_write": FAN_CLOSE_WRITE,
        "create": FAN_CREATE,
        "delete": FAN_DELETE,
        "rename": FAN_RENAME | FAN_MOVED_FROM | FAN_MOVED_TO,
        "attrib": FAN_ATTRIB,
    }
)


# The per-file kernel bits each SECL event type of this source comes from: what ``restrict``
# keeps asking for when a rule names the type, and what a discarder of the type ignores.
# Only per-file bits are ever left out: creations, deletions and renames stay asked for
# whatever the rules, since they are rare, the self-test's open(O_CREAT) is a creation, and
# the backends need them to keep names right.
TYPE_BITS = MappingProxyType({"open": FAN_OPEN})


def event_mask(names: Iterable[str]) -> int:
    """The fanotify mask of event names (keys of EVENT_BITS); ValueError names an unknown one.
    Every name gives DEFAULT_MASK."""
    mask = 0
    for name in names:
        bits = EVENT_BITS.get(name)
        if bits is None:
            raise ValueError(
                f"unknown file event {name!r}, expected one of {', '.join(EVENT_BITS)}"
            )
        mask |= bits
    if mask & FAN_RENAME:
        mask &= ~(FAN_MOVED_FROM | FAN_MOVED_TO)  # the backend falls back to them by itself
    return mask | FAN_ONDIR if mask else 0


class _Backend(Protocol):
    fd: int
    overflows: int

    def open(self) -> None: ...
    def close(self) -> None: ...
    def read(self) -> Any: ...
    def forget_directories(self) -> None: ...


def file_fields(path: str) -> dict[str, Any]:
    """The SECL ``file`` dict of a path, as it is now."""
    fields: dict[str, Any] = {"path": path, "name": os.path.basename(path)}
    try:
        st = os.lstat(path)
    except OSError:
        fields.update(mode=0, uid=0, gid=0, inode=0)
    else:
        fields.update(mode=st.st_mode, uid=st.st_uid, gid=st.st_gid, inode=st.st_ino)
    return fields


class FileSource(Source):
    name = "file"
    # Nothing here must be read before it is gone (paths resolve through directory handles
    # and the process cache keeps exited processes), so a storm is drained in larger batches.
    coalesce = 0.05

    def __init__(
        self,
        cache: ProcessCache,
        paths: list[str],
        backend: str = "auto",
        mask: int = DEFAULT_MASK,
        max_discarders: int = MAX_DISCARDERS,
    ) -> None:
        """``mask``: the fanotify event bits to ask for (see :func:`event_mask`); leaving out
        FAN_OPEN spares a busy host the cost of every open on the watched filesystems.
        ``max_discarders``: how many files may carry a discarder at once (0: none)."""
        super().__init__()
        if backend not in ("auto", "fanotify", "inotify"):
            raise ValueError(f"unknown file backend {backend!r}")
        if not mask & ~FAN_ONDIR:
            raise ValueError("no file event asked for")
        self.mask = mask
        # What we emit: these bits as any backend reports them (inotify reports all it
        # watches; the fanotify fallback turns FAN_RENAME into the moved pair).
        self._wanted_unrestricted = (
            mask | FAN_ONDIR | (FAN_MOVED_FROM | FAN_MOVED_TO if mask & FAN_RENAME else 0)
        )
        self._wanted = self._wanted_unrestricted
        # What we ask the kernel for: renames and deletions always, since they are rare and
        # the backend's directory cache must hear of them to keep paths right.
        self._kernel_mask = mask | FAN_ONDIR | FAN_RENAME | FAN_DELETE
        self.max_discarders = max_discarders
        if max_discarders:
            self._kernel_mask |= FAN_CREATE  # a new name lifts a discarder: hear of links
        self._restricted_to: frozenset[str] | None = None
        self.cache = cache
        self.paths = [os.path.realpath(p) for p in paths]
        self.requested_backend = backend
        self._backend: _Backend | None = None
        self._backend_name = ""
        self._fallback_reason = ""
        self._seen_overflows = 0
        self._own_pid = os.getpid()
        self._prefixes = tuple(p.rstrip("/") + "/" for p in self.paths)

    def _open(self) -> None:
        if not self.paths:
            raise SourceUnavailable("no paths to watch")
        if self.requested_backend in ("auto", "fanotify"):
            fan = Fanotify(
                self.paths,
                self._restricted(self._kernel_mask),
                discard_unwatched=self.max_discarders > 0,
                max_discarders=self.max_discarders,
            )
            try:
                fan.open()
            except OSError as exc:
                if self.requested_backend == "fanotify":
                    raise SourceUnavailable(f"fanotify refused: {exc.strerror}") from exc
                self._fallback_reason = f"fanotify refused: {exc.strerror}"
            else:
                self._backend, self._backend_name = fan, "fanotify"
                return
        ino = Inotify(self.paths)
        try:
            ino.open()
        except OSError as exc:
            raise SourceUnavailable(f"inotify refused: {exc.strerror}") from exc
        self._backend, self._backend_name = ino, "inotify"

    def _fileno(self) -> int:
        assert self._backend is not None
        return self._backend.fd

    def _close(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def _detail(self) -> dict[str, Any]:
        backend = self._backend
        asked = self._restricted(self.mask)
        detail: dict[str, Any] = {
            "backend": self._backend_name,
            "fallback_reason": self._fallback_reason,
            "paths": list(self.paths),
            "events": [name for name, bits in EVENT_BITS.items() if bits & self.mask],
            "kernel_events": [name for name, bits in EVENT_BITS.items() if bits & asked],
            "restricted_to_rules": self._restricted_to is not None,
        }
        if isinstance(backend, Fanotify):
            detail["discarders"] = {
                "active": backend.discarders,
                "added": backend.discarders_added,
                "lifted": backend.discarders_lifted,
                "evicted": backend.discarders_evicted,
                "errors": backend.discard_errors,
            }
        return detail

    # -- what the rules need ------------------------------------------------------------------

    def _restricted(self, mask: int) -> int:
        types = self._restricted_to
        if types is None:
            return mask
        needed = 0
        for etype in types:
            needed |= TYPE_BITS.get(etype, 0)
        return mask & (~PER_FILE_EVENTS | needed)

    def restrict(self, event_types: frozenset[str] | None) -> None:
        """Ask the kernel only for what rules of ``event_types`` can match (None: everything
        the mask names, the default). Safe to call from another thread while running; the
        discarders are lifted too, since they were judged against the previous rules."""
        self._restricted_to = None if event_types is None else frozenset(event_types)
        self._wanted = self._restricted(self._wanted_unrestricted)
        backend = self._backend
        if isinstance(backend, Fanotify):
            backend.flush_discarders()
            backend.set_mask(self._restricted(self._kernel_mask))

    def discard(self, path: str, event_type: str) -> bool:
        """No rule can match ``event_type`` events of the file at ``path``: have the kernel
        drop them (fanotify only; False when not done). Lifted by a new name for the file,
        by ``restrict`` and by ``flush_discarders``."""
        bits = TYPE_BITS.get(event_type, 0)
        backend = self._backend
        if not bits or not isinstance(backend, Fanotify):
            return False
        return backend.discard(path, bits)

    def flush_discarders(self) -> None:
        backend = self._backend
        if isinstance(backend, Fanotify):
            backend.flush_discarders()

    def _watched(self, path: str) -> bool:
        return path in self.paths or path.startswith(self._prefixes)

    def _read_ready(self) -> None:
        backend = self._backend
        assert backend is not None
        wanted = self._wanted
        for raw in backend.read():
            if raw.mask & FAN_ONDIR and raw.mask & (FAN_RENAME | FAN_DELETE | FAN_MOVED_FROM):
                backend.forget_directories()
            if raw.pid == self._own_pid or not raw.mask & wanted & ~FAN_ONDIR:
                continue
            if not (self._watched(raw.path) or (raw.new_path and self._watched(raw.new_path))):
                # In a directory above a watched path (the backend cannot tell by directory
                # alone): never watched, so let the kernel drop this file's events.
                if isinstance(backend, Fanotify) and not raw.mask & FAN_ONDIR:
                    backend.discard(raw.path, backend.mask)
                continue
            raw.mask &= wanted
            for event in self._events_of(raw):
                self._emit(event)
        if backend.overflows != self._seen_overflows:
            self._add_drops(backend.overflows - self._seen_overflows)
            self._seen_overflows = backend.overflows

    def _events_of(self, raw: RawFileEvent) -> list[Event]:
        """One event per kernel bit (the kernel merges several into one record), in the
        order they happened to the file."""
        now = time.time()
        mask, ondir = raw.mask, bool(raw.mask & FAN_ONDIR)
        cache = self.cache
        process = cache.process_if_known(raw.pid) if raw.pid > 0 else {"pid": 0, "ancestors": []}
        file = file_fields(raw.path)
        out: list[Event] = []

        def add(kind: str, part: dict[str, Any]) -> None:
            out.append(
                {
                    "type": kind,
                    "timestamp": now,
                    "source": self.name,
                    kind: part,
                    "process": process,
                }
            )

        if mask & FAN_CREATE:
            if ondir:
                add("mkdir", {"file": file})
            else:
                add("open", {"file": file, "flags": O_CREAT, "retval": 0})
        if mask & FAN_OPEN and not ondir:
            add("open", {"file": file, "flags": 0, "retval": 0})
        if mask & FAN_OPEN_EXEC:
            add("open_exec", {"file": file})
        if mask & FAN_MODIFY:
            add("modify", {"file": file})
        if mask & FAN_ATTRIB:
            add("attrib", {"file": file})
        if mask & FAN_CLOSE_WRITE:
            add("close_write", {"file": file})
        if mask & (FAN_RENAME | FAN_MOVED_TO | FAN_MOVED_FROM):
            target = raw.new_path or raw.path
            destination = file_fields(target)
            moved = {k: v for k, v in destination.items() if k not in ("path", "name")}
            add(
                "rename",
                {
                    "file": {
                        "path": raw.path,
                        "name": os.path.basename(raw.path),
                        **moved,
                        "destination": destination,
                    }
                },
            )
        if mask & FAN_DELETE:
            add("rmdir" if ondir else "unlink", {"file": file})
        return out
