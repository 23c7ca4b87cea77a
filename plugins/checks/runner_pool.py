"""The check runners: a host :class:`~host.workers.WorkerPool` owned by the ``checks`` plugin.

Why not ``agent.workers``: that pool is sized for the host's own blocking work
(``security_agent.worker_pool_size``) and is shared with other plugins; a check that never
returns would eat one of its threads. Checks get ``check_runners`` threads of their own (4 by
default, as the Datadog Agent), so a stuck check costs a runner, never the host. Threads are
daemons: a check the plugin had to abandon at shutdown cannot keep the process alive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from twisted.internet import defer

from host.workers import WorkerPool

T = TypeVar("T")

STOP_GRACE = 2.0
"""Seconds after :meth:`RunnerPool.stop` before a runner still held by a check is logged."""


class Runners(Protocol):
    """What the runner needs of a pool; benchmarks and tests may pass an inline one."""

    size: int

    def start(self) -> None: ...

    def defer(self, f: Callable[[], T]) -> defer.Deferred[T]: ...

    def stats(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


class RunnerPool:
    """``check_runners`` threads named ``check-runner-N``, with the status keys of the Agent."""

    def __init__(self, reactor: Any, size: int) -> None:
        if size < 1:
            raise ValueError(f"check_runners must be at least 1, got {size}")
        self.size = size
        self._workers = WorkerPool(reactor, size, name="check-runner")

    def start(self) -> None:
        self._workers.start()

    def defer(self, f: Callable[[], T]) -> defer.Deferred[T]:
        return self._workers.defer(f)

    def stats(self) -> dict[str, int]:
        stats = self._workers.stats()
        return {"Workers": stats["size"], "Busy": stats["busy"]}

    def stop(self) -> None:
        """Stop taking work without waiting: the plugin's jobs already waited for running
        checks, so a thread still busy here holds an abandoned check (the pool logs it)."""
        self._workers.stop(STOP_GRACE)
