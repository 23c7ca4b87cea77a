"""The bounded, named thread pool for blocking plugin work.

Plugins never get the reactor's shared pool (DNS lookups use it, and a stuck job there hangs
reactor shutdown). Worker threads are daemons so that a job the host had to abandon at
shutdown cannot keep the process alive; :meth:`WorkerPool.stop` waits for them only up to a
deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from host.deadlines import wait_at_most

P = ParamSpec("P")
T = TypeVar("T")

log = Logger(namespace="host.workers")


class _DaemonThread(threading.Thread):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True


class _DaemonThreadPool(ThreadPool):
    threadFactory = _DaemonThread


class WorkerPool:
    """``size`` threads named ``<name>-N``; :meth:`defer` runs a function in one of them."""

    def __init__(self, reactor: Any, size: int, name: str = "security-agent-worker") -> None:
        if size < 1:
            raise ValueError(f"worker pool size must be at least 1, got {size}")
        self._reactor = reactor
        self.size = size
        self.name = name
        self._pool = _DaemonThreadPool(minthreads=0, maxthreads=size, name=name)
        self.started = False

    def start(self) -> None:
        if not self.started:
            self._pool.start()
            self.started = True

    def defer(self, f: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        """Run ``f`` in the pool; the Deferred fires in the reactor thread with its result."""
        if not self.started:
            return defer.fail(RuntimeError(f"worker pool {self.name} is not running"))
        reactor: IReactorFromThreads = self._reactor
        return deferToThreadPool(reactor, self._pool, f, *args, **kwargs)

    def stats(self) -> dict[str, int]:
        """Size, busy threads and queued jobs, for status and telemetry."""
        return {
            "size": self.size,
            "busy": len(self._pool.working),
            "queued": self._pool._team.statistics().backloggedWorkCount if self.started else 0,
        }

    def stop(self, timeout: float) -> Deferred[bool]:
        """Stop the pool; fires ``True`` once every thread has ended, ``False`` at the deadline.

        ``ThreadPool.stop`` joins its threads, so it runs in a thread of its own: a job that
        never returns must not freeze the reactor (and with it the whole shutdown).
        """
        if not self.started:
            return defer.succeed(True)
        self.started = False
        joined: Deferred[None] = Deferred()
        reactor = self._reactor

        def join() -> None:
            self._pool.stop()
            reactor.callFromThread(joined.callback, None)

        threading.Thread(target=join, name=f"{self.name}-stopper", daemon=True).start()

        def give_up() -> None:
            log.error(
                "Worker pool {pool} did not stop within {timeout}s; "
                "abandoning {busy} busy thread(s)",
                pool=self.name,
                timeout=timeout,
                busy=len(self._pool.working),
            )

        return wait_at_most(reactor, joined, timeout, give_up)
