"""The privileged side of the event-monitoring socket: a process that runs the kernel sources
and streams their events, one JSON object per line, to every client of a unix socket.

The socket is created with mode 0600 (only root, which runs both sides, may read events about
every process on the host). Each client has a bounded queue and its own writer thread, so a
slow client loses its own events (counted in ``stats()["drops"]``) and never stalls the
sources or the other clients.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import stat
import threading
from collections.abc import Iterable
from typing import Any

from .base import Event, Source

QUEUE_SIZE = 10_000


class _Client:
    def __init__(self, conn: socket.socket, size: int) -> None:
        self.conn = conn
        self.queue: queue.Queue[bytes | None] = queue.Queue(size)
        self.thread = threading.Thread(target=self._write, name="rs-event-client", daemon=True)
        self.alive = True

    def _write(self) -> None:
        try:
            while True:
                line = self.queue.get()
                if line is None:
                    break
                self.conn.sendall(line)
        except OSError:
            pass
        finally:
            self.alive = False
            self.conn.close()


class EventStreamServer:
    """Accepts clients on ``path`` and fans ``publish(event)`` out to them."""

    def __init__(self, path: str, queue_size: int = QUEUE_SIZE) -> None:
        if not path:
            raise ValueError("event_monitoring_config.socket must be set")
        self.path = path
        self.queue_size = queue_size
        self._sock: socket.socket | None = None
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.drops = 0

    def start(self) -> None:
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise OSError(f"{self.path}: exists and is not a socket, refusing to replace it")
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(16)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="rs-event-accept", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            client = _Client(conn, self.queue_size)
            with self._lock:
                self._clients = [c for c in self._clients if c.alive] + [client]
            client.thread.start()

    def publish(self, event: Event) -> None:
        """Queue one event for every client; callable from any source thread."""
        line = (json.dumps(event, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            clients = list(self._clients)
            self.published += 1
        for client in clients:
            try:
                client.queue.put_nowait(line)
            except queue.Full:
                with self._lock:
                    self.drops += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "clients": sum(1 for c in self._clients if c.alive),
                "published": self.published,
                "drops": self.drops,
            }

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(OSError):
                client.conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(queue.Full):
                client.queue.put_nowait(None)
            client.thread.join(2.0)
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        except OSError:
            pass


def serve_events(path: str, sources: Iterable[Source], stop: threading.Event) -> dict[str, Any]:
    """Run ``sources`` and stream their events on the unix socket ``path`` until ``stop`` is
    set; returns the final server and source stats. This is the body of the privileged
    event-monitoring process (the CLI subcommand sets ``stop`` on SIGTERM/SIGINT)."""
    server = EventStreamServer(path)
    server.start()
    started: list[Source] = []
    try:
        for source in sources:
            source.start(server.publish)
            started.append(source)
        stop.wait()
    finally:
        for source in reversed(started):
            source.stop()
        server.stop()
    result = server.stats()
    result["sources"] = [s.stats().as_dict() for s in started]
    return result
