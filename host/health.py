"""Component health, with the semantics of Datadog's ``pkg/status/health``.

Every long-running part of the agent registers itself in one of three catalogs and gets a
:class:`HealthHandle` back:

* :meth:`Health.register_liveness` — counts for liveness *and* readiness (``GetLive``/``GetReady``);
* :meth:`Health.register_readiness` — counts for readiness only;
* :meth:`Health.register_startup` — counts for the startup probe only.

A component proves it is alive by calling :meth:`HealthHandle.beat` at least once every
:data:`PING_FREQUENCY` seconds. The model is Datadog's buffered channel: each catalog ticks every
15 s and pushes one "ping" into each component's buffer of size 2; a beat empties the buffer. A
tick that finds the buffer full marks the component unhealthy, so a component that stops beating
turns unhealthy after missing two ticks, and a freshly registered component (whose buffer starts
full, as in Datadog) is unhealthy until it first beats and a tick has passed. With ``once=True`` a
component that has passed once stays healthy for good (for one-shot start-up work).

Every non-empty catalog also reports a ``healthcheck`` pseudo-component, unhealthy when the
catalog's own ticker has not run for two periods — that catches a blocked reactor, which would
otherwise freeze every component in its last state.

Our extension: :meth:`HealthHandle.set_failing` marks a component unhealthy at once, with a
reason, until :meth:`HealthHandle.clear_failing`. The scheduler uses it for a failed or overrunning
run; heartbeats alone could only show that after two ticks.

Threading: ``beat``, ``set_failing``, ``clear_failing`` and every status read are safe from any
thread (a flare is built in a worker thread, checks run in a thread pool). ``register_*``,
``deregister`` and ``stop`` schedule or cancel reactor timers, and Twisted's ``callLater`` is not
thread-safe, so call those from the reactor thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from twisted.internet.interfaces import IDelayedCall, IReactorTime

PING_FREQUENCY: float = 15.0
"""Seconds between two ticks of a catalog; a component must beat at least this often."""

BUFFER_SIZE: int = 2
"""Pings a component may leave unanswered before a tick marks it unhealthy."""

HEALTHCHECK_NAME = "healthcheck"
"""The pseudo-component every non-empty catalog reports about its own ticker."""

MISSED_HEARTBEATS = "missed heartbeats"
"""The reason :meth:`Health.unhealthy_reasons` gives for a component that is not beating."""

TICKER_STALLED = "health ticker stalled"
"""The reason :meth:`Health.unhealthy_reasons` gives for a stale ``healthcheck``."""

CatalogName = Literal["liveness", "readiness", "startup"]


class HealthError(Exception):
    """A misuse of the health registry, such as deregistering an unknown handle."""


class HealthTimeout(HealthError):
    """:meth:`Health.get_ready_nonblocking` could not read the status in time."""


@dataclass(frozen=True)
class HealthStatus:
    """A snapshot of component names split into healthy and unhealthy, in registration order.

    The ``healthcheck`` pseudo-component comes first whenever any component is registered.
    """

    healthy: tuple[str, ...] = ()
    unhealthy: tuple[str, ...] = ()

    @property
    def all_healthy(self) -> bool:
        """True when nothing is unhealthy (also true for an empty status)."""
        return not self.unhealthy

    def to_json(self) -> dict[str, list[str]]:
        """The ``/agent/status/health`` body, with Datadog's field names.

        Lists are always present, possibly empty: Go marshals an empty status as ``null``, which
        is a wart clients must special-case, so we do not reproduce it.
        """
        return {"Healthy": list(self.healthy), "Unhealthy": list(self.unhealthy)}


class HealthHandle:
    """What a component gets back from registration; keep it for as long as the component runs.

    Handles are only created by :class:`Health`. Two components registered under the same name
    get distinct handles and are tracked separately. After :meth:`Health.deregister` the handle
    is closed and its methods do nothing.
    """

    def __init__(
        self, name: str, catalog: CatalogName, *, once: bool, lock: threading.Lock
    ) -> None:
        self.name = name
        self.catalog: CatalogName = catalog
        self._once = once
        # Shared with the owning Health, so a beat and a status read never interleave.
        self._lock = lock
        # Datadog pre-fills the channel: a new component is unhealthy until it starts draining.
        self._pending = BUFFER_SIZE
        self._heartbeat_ok = False
        self._failing: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<HealthHandle {self.catalog}:{self.name!r}>"

    def beat(self) -> None:
        """Tell the catalog this component is alive; call it at least every PING_FREQUENCY s."""
        with self._lock:
            if not self._closed:
                self._pending = 0

    def set_failing(self, reason: str) -> None:
        """Report the component unhealthy now, with ``reason``, until :meth:`clear_failing`.

        Heartbeats keep being tracked underneath but cannot make the component healthy while it
        is failing; once cleared, it is exactly as healthy as its heartbeats say.
        """
        if not reason:
            # An empty reason would make the stop-time report and the status page useless.
            raise ValueError("a failing reason must not be empty")
        with self._lock:
            if not self._closed:
                self._failing = reason

    def clear_failing(self) -> None:
        """Undo :meth:`set_failing`; a no-op when the component is not failing."""
        with self._lock:
            self._failing = None

    @property
    def failing_reason(self) -> str | None:
        """The reason given to :meth:`set_failing`, or None when the component is not failing."""
        with self._lock:
            return self._failing

    # The methods below are called by Health with the lock already held.

    def _ping(self) -> None:
        # Once-components that have passed are frozen healthy, exactly as in Datadog.
        if self._once and self._heartbeat_ok:
            return
        if self._pending < BUFFER_SIZE:
            self._pending += 1
            self._heartbeat_ok = True
        else:
            self._heartbeat_ok = False

    def _is_healthy(self) -> bool:
        return self._heartbeat_ok and self._failing is None

    def _unhealthy_reason(self) -> str:
        return self._failing if self._failing is not None else MISSED_HEARTBEATS


class _Catalog:
    """One catalog's components and its ticker; every access happens under Health's lock."""

    def __init__(self, name: CatalogName, ping_frequency: float) -> None:
        self.name: CatalogName = name
        self.ping_frequency = ping_frequency
        self.components: list[HealthHandle] = []
        self.ticker: IDelayedCall | None = None
        self.latest_run = 0.0

    def stalled(self, now: float) -> bool:
        return now > self.latest_run + BUFFER_SIZE * self.ping_frequency


class Health:
    """The health registry of one agent: three catalogs ticking on the reactor's clock.

    ``clock`` is the reactor (or a ``twisted.internet.task.Clock`` in tests); all time is read
    from it, never from the wall clock.
    """

    def __init__(self, clock: IReactorTime, ping_frequency: float = PING_FREQUENCY) -> None:
        if ping_frequency <= 0:
            raise ValueError(f"health ping frequency must be positive, got {ping_frequency}")
        self._clock = clock
        self.ping_frequency = ping_frequency
        # One lock for all catalogs, so get_ready sees liveness and readiness at the same instant
        # and get_ready_nonblocking has a single lock to time out on.
        self._lock = threading.Lock()
        self._liveness = _Catalog("liveness", ping_frequency)
        self._readiness = _Catalog("readiness", ping_frequency)
        self._startup = _Catalog("startup", ping_frequency)
        self._stopped = False

    def register_liveness(self, name: str, *, once: bool = False) -> HealthHandle:
        """Register a component that counts for both liveness and readiness."""
        return self._register(self._liveness, name, once)

    def register_readiness(self, name: str, *, once: bool = False) -> HealthHandle:
        """Register a component that counts for readiness only."""
        return self._register(self._readiness, name, once)

    def register_startup(self, name: str, *, once: bool = False) -> HealthHandle:
        """Register a component that counts for the startup probe only."""
        return self._register(self._startup, name, once)

    def deregister(self, handle: HealthHandle) -> None:
        """Remove the component and close its handle; the catalog's ticker stops when it empties.

        Raises HealthError("component not registered") for a handle that is not (or no longer)
        registered here.
        """
        with self._lock:
            catalog = self._catalog(handle.catalog)
            # Identity, not name: same-named components are distinct registrations.
            remaining = [other for other in catalog.components if other is not handle]
            if len(remaining) == len(catalog.components):
                raise HealthError("component not registered")
            catalog.components = remaining
            handle._closed = True
            if not catalog.components and catalog.ticker is not None:
                if catalog.ticker.active():
                    catalog.ticker.cancel()
                catalog.ticker = None

    def get_live(self) -> HealthStatus:
        """Liveness: the liveness catalog."""
        with self._lock:
            return self._status_locked((self._liveness,))

    def get_ready(self) -> HealthStatus:
        """Readiness: the liveness and readiness catalogs together.

        Datadog concatenates the two catalogs' lists, which can list ``healthcheck`` twice; we
        list it once, unhealthy if either catalog's ticker is stalled.
        """
        with self._lock:
            return self._status_locked((self._liveness, self._readiness))

    def get_startup(self) -> HealthStatus:
        """The startup probe: the startup catalog."""
        with self._lock:
            return self._status_locked((self._startup,))

    def get_ready_nonblocking(self, timeout: float = 0.5) -> HealthStatus:
        """:meth:`get_ready`, but give up after ``timeout`` seconds of waiting for the lock.

        For shutdown and other paths that must not hang on a wedged thread; raises
        HealthTimeout("timeout when getting health status"), Datadog's message. 0.5 s is the
        timeout of Datadog's GetReadyNonBlocking.
        """
        if not self._lock.acquire(timeout=timeout):
            raise HealthTimeout("timeout when getting health status")
        try:
            return self._status_locked((self._liveness, self._readiness))
        finally:
            self._lock.release()

    def unhealthy_reasons(self) -> dict[str, str]:
        """Why each unhealthy component of any catalog is unhealthy, by name.

        The reason is the one given to ``set_failing``, else ``"missed heartbeats"``; a stale
        ``healthcheck`` is reported as ``"health ticker stalled"``. When same-named components
        disagree, a ``set_failing`` reason wins over missed heartbeats, being more specific.
        """
        with self._lock:
            now = self._clock.seconds()
            reasons: dict[str, str] = {}
            for catalog in (self._liveness, self._readiness, self._startup):
                if catalog.components and catalog.stalled(now):
                    reasons[HEALTHCHECK_NAME] = TICKER_STALLED
                for handle in catalog.components:
                    if handle._is_healthy():
                        continue
                    if handle._failing is not None or handle.name not in reasons:
                        reasons[handle.name] = handle._unhealthy_reason()
            return reasons

    def stop(self) -> None:
        """Cancel every ticker, for shutdown; idempotent.

        Components stay registered so a final status still names them; no catalog ticks again,
        so after two periods ``healthcheck`` honestly reports the registry as stalled.
        """
        with self._lock:
            self._stopped = True
            for catalog in (self._liveness, self._readiness, self._startup):
                if catalog.ticker is not None and catalog.ticker.active():
                    catalog.ticker.cancel()
                catalog.ticker = None

    def _catalog(self, name: CatalogName) -> _Catalog:
        if name == "liveness":
            return self._liveness
        if name == "readiness":
            return self._readiness
        return self._startup

    def _register(self, catalog: _Catalog, name: str, once: bool) -> HealthHandle:
        with self._lock:
            handle = HealthHandle(name, catalog.name, once=once, lock=self._lock)
            catalog.components.append(handle)
            if catalog.ticker is None and not self._stopped:
                # A (re)started catalog has not stalled: the time it sat empty does not count.
                catalog.latest_run = self._clock.seconds()
                catalog.ticker = self._clock.callLater(catalog.ping_frequency, self._tick, catalog)
            return handle

    def _tick(self, catalog: _Catalog) -> None:
        with self._lock:
            catalog.ticker = None
            if not catalog.components:
                return
            for handle in catalog.components:
                handle._ping()
            now = self._clock.seconds()
            catalog.latest_run = now
            # Scheduled from the time the tick actually ran: after a blocked reactor, a burst of
            # catch-up ticks would mark every component unhealthy for a stall that was not theirs.
            catalog.ticker = self._clock.callLater(catalog.ping_frequency, self._tick, catalog)

    def _status_locked(self, catalogs: tuple[_Catalog, ...]) -> HealthStatus:
        now = self._clock.seconds()
        healthy: list[str] = []
        unhealthy: list[str] = []
        present = False
        stalled = False
        for catalog in catalogs:
            if not catalog.components:
                continue
            present = True
            stalled = stalled or catalog.stalled(now)
            for handle in catalog.components:
                (healthy if handle._is_healthy() else unhealthy).append(handle.name)
        if not present:
            return HealthStatus()
        (unhealthy if stalled else healthy).insert(0, HEALTHCHECK_NAME)
        return HealthStatus(healthy=tuple(healthy), unhealthy=tuple(unhealthy))
