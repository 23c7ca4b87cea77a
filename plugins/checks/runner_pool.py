"""The check runners: a bounded thread pool owned by the ``checks`` plugin.

Why not ``agent.workers``: that pool is sized for the host's own blocking work
(``security_agent.worker_pool_size``) and is shared with other plugins; a check that never
returns would eat one of its threads. Checks get ``check_runners`` threads of their own (4 by
default, as the Datadog Agent), so a stuck check costs a runner, never the host. Threads are
daemons: a check the plugin had to abandon at shutdown cannot keep the process alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


class Runners(Protocol):
    """What the runner needs of a pool; benchmarks and tests may pass an inline one."""

    size: int

    def start(self) -> None: ...

    def defer(self, f: Callable[[], T]) -> defer.Deferred[T]: ...

    def stats(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


class _DaemonThread(threading.Thread):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True


class _DaemonThreadPool(ThreadPool):
    threadFactory = _DaemonThread


class RunnerPool:
    def __init__(self, reactor: Any, size: int) -> None:
        if size < 1:
            raise ValueError(f"check_runners must be at least 1, got {size}")
        self.reactor = reactor
        self.size = size
        self._pool = _DaemonThreadPool(minthreads=0, maxthreads=size, name="check-runner")
        self.started = False

    def start(self) -> None:
        if not self.started:
            self._pool.start()
            self.started = True

    def defer(self, f: Callable[[], T]) -> defer.Deferred[T]:
        if not self.started:
            return defer.fail(RuntimeError("the check runners are stopped"))
        return deferToThreadPool(self.reactor, self._pool, f)

    def stats(self) -> dict[str, int]:
        return {"Workers": self.size, "Busy": len(self._pool.working)}

    def stop(self) -> None:
        """Stop taking work; threads still running a check are left to finish (daemons)."""
        if not self.started:
            return
        self.started = False
        threading.Thread(target=self._pool.stop, name="check-runner-stopper", daemon=True).start()
