"""The runtime security service of one agent: policies, sources, engine, self-test, drops.

Start (``start``): load the policies in a worker, start the sources (in-process, the default)
or the event-monitoring listener (``event_monitoring_config.socket``), watch the policy
directory, poll source drop counters, run the self-test. Every event reaches the engine in
the reactor thread: source threads queue events and wake the reactor once per batch
(``MAX_PENDING`` bounds the queue; overflow is counted as ``engine-queue`` drops). A file or
audit event of a process the cache could not resolve (forked and gone before the process
source read the fork) is held back ``RESOLVE_RETRY`` seconds and evaluated with the process
as the cache knows it then (``processResolvedLate`` / ``processUnresolved`` in status).
Reloads keep the values of ``set`` variables still declared with the same type
(:mod:`.variable_carry`). In-process, the file source asks the kernel only for the event types
the loaded rules can match, and a file event no rule can match by its path or name becomes a
discarder (the kernel drops that file's later events of the type); both are redone at each
swap. ``reload`` builds a new policy set in a worker and swaps it in when built;
reloads never overlap (a request during a reload runs once it is over).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger
from twisted.python.filepath import FilePath

from plugins.runtime_security.actions import ActionRunner
from plugins.runtime_security.engine import TRACK, RuleEngine
from plugins.runtime_security.policy_loader import (
    PolicySet,
    host_facts,
    load_policies,
    policy_files,
)
from plugins.runtime_security.security_event import iso_date
from plugins.runtime_security.self_test import SelfTest, SelfTestResult
from plugins.runtime_security.settings import RuntimeSettings
from plugins.runtime_security.sources import (
    AuditSource,
    EventListener,
    FileSource,
    ProcessCache,
    ProcessSource,
    Source,
    is_unresolved,
)
from plugins.runtime_security.sources.file_source import TYPE_BITS
from plugins.runtime_security.variable_carry import carry_variables

PROCESS_LIFECYCLE = frozenset({"exec", "fork", "exit"})
log = Logger(namespace="runtime_security")
DROPS_RULE_ID = "runtime_security_dropped_events"
RELOAD_DEBOUNCE = 0.5
CONNECT_WAIT = 10.0  # seconds the self-test waits for the event-monitoring socket
# Events the sources may have handed over and the reactor not yet evaluated. At 6,000
# events/s this is over ten seconds of a stuck reactor; beyond it events are dropped and
# counted (the "engine" drops, raised as a security event like a source's).
MAX_PENDING = 65536
QUEUE_SOURCE = "engine-queue"
# A file or audit event of a process the cache knew nothing of (forked and gone before the
# process source read the fork) is evaluated once more after this delay, by when the fork
# and exit records have been read; at most MAX_RETRYING such events wait at a time.
RESOLVE_RETRY = 0.1
MAX_RETRYING = 4096


def build_sources(settings: RuntimeSettings, cache: ProcessCache) -> list[Source]:
    """The kernel sources the settings turn on (not started)."""
    sources: list[Source] = []
    if settings.process_source:
        sources.append(ProcessSource(cache))
    if settings.file_source:
        paths = [*settings.fim_paths]
        if settings.self_test:
            os.makedirs(settings.self_test_dir, mode=0o700, exist_ok=True)
            paths.append(settings.self_test_dir)
        sources.append(
            FileSource(
                cache,
                paths,
                backend=settings.file_backend,
                mask=settings.file_mask,
                max_discarders=settings.max_discarders if settings.kernel_filters else 0,
            )
        )
    if settings.audit_source:
        sources.append(AuditSource(cache))
    return sources


def load_from_settings(settings: RuntimeSettings, agent_version: str, clock: Any) -> PolicySet:
    return load_policies(
        policy_files(settings.policies_dir),
        agent_version=agent_version,
        enforcement=settings.enforcement,
        facts=host_facts(),
        clock=clock,
    )


class RuntimeSecurityService:
    def __init__(self, agent: Any, settings: RuntimeSettings) -> None:
        self.agent = agent
        self.settings = settings
        self.reactor = agent.reactor
        self.cache = ProcessCache()
        self.sources: list[Source] = []
        self.listener: EventListener | None = None
        self.runner = ActionRunner(agent.workers, settings.hash_max_size)
        empty = load_policies([], agent_version=agent.version, facts={}, clock=self.reactor.seconds)
        self.engine = RuleEngine(
            empty,
            self.runner,
            agent.events.emit,
            self.reactor.seconds,
            agent_version=agent.version,
            hostname=agent.hostname,
        )
        self.self_test = SelfTest(self.reactor, agent.workers, self.engine, settings.self_test_dir)
        self.reloads = 0
        self.reload_errors = 0
        self.last_reload_reason = ""
        self._reloading: Deferred[PolicySet] | None = None
        self._waiting: list[tuple[str, Deferred[PolicySet]]] = []
        self._watcher: Any = None
        self._watch_error = ""
        self._debounce: Any = None
        self._drops_job: Any = None
        self._seen_drops: dict[str, int] = {}
        self.drop_events = 0
        self.started = False
        # Events from the source threads wait here for the reactor; one callFromThread per
        # batch rather than per event (each wakes the reactor through a pipe write, which
        # was the largest single cost of the plugin under an exec storm).
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()
        self._drain_scheduled = False
        self.queue_drops = 0
        self._retrying: list[tuple[float, dict[str, Any]]] = []  # (due, event), due order
        self._retry_call: Any = None
        self.resolved_late = 0  # events whose process was found on the retry
        self.unresolved = 0  # events evaluated without their process context

    # -- start / stop ---------------------------------------------------------------------------

    @inlineCallbacks
    def start(self) -> Any:
        if not os.path.isdir(self.settings.policies_dir):
            log.warn(
                "runtime security policies directory {dir} does not exist: only the built-in "
                "default policy is loaded",
                dir=self.settings.policies_dir,
            )
        yield self.reload("start")
        self.started = True
        if self.settings.socket:
            self.listener = EventListener(self.reactor, self.settings.socket, self.on_event)
            self.listener.run()
        else:
            self.sources = build_sources(self.settings, self.cache)
            self._apply_interest()
            for source in self.sources:
                source.start(self.on_source_event, self.on_source_burst)
                stats = source.stats()
                if not stats.active:
                    log.warn(
                        "runtime security source {name} is not active: {reason}",
                        name=stats.name,
                        reason=stats.reason,
                    )
        self._start_watch()
        self._drops_job = self.agent.scheduler.add(
            "runtime_security.housekeeping",
            self.housekeeping,
            interval=self.settings.drops_interval,
        )
        self._drops_job.start()
        if self.settings.self_test:
            self._self_test_when_connected(CONNECT_WAIT)

    def _self_test_when_connected(self, patience: float) -> None:
        # Over the socket, events flow only once the listener is connected: testing before
        # would report the connection delay as a detection failure.
        listener = self.listener
        if listener is None or listener.connected:
            self.self_test.run().addCallback(self._log_self_test)
        elif patience <= 0:
            self.self_test.fail("not connected to the event monitoring module")
            log.error(
                "runtime security self-test failed: not connected to the event monitoring module"
            )
        elif self.started:
            self.reactor.callLater(0.1, self._self_test_when_connected, patience - 0.1)

    def stop(self) -> Deferred[None]:
        self.started = False
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None
        self._retrying = []
        if self._debounce is not None and self._debounce.active():
            self._debounce.cancel()
        if self._watcher is not None:
            self._watcher.stopReading()
            self._watcher.loseConnection()
            self._watcher = None
        if self.listener is not None:
            self.listener.stop()
        job, self._drops_job = self._drops_job, None
        sources, self.sources = self.sources, []
        stopped: Deferred[None] = self.agent.workers.defer(_stop_sources, sources)
        if job is not None:
            stopped.addBoth(lambda _: job.stop(1.0))
        return stopped

    # -- events ---------------------------------------------------------------------------------

    def on_source_event(self, event: dict[str, Any]) -> None:
        """Called from a source's reader thread: queue the event for the reactor thread,
        which ``on_source_burst`` wakes once the source has read what the kernel had."""
        with self._pending_lock:
            if len(self._pending) >= MAX_PENDING:
                self.queue_drops += 1
                return
            self._pending.append(event)

    def on_source_burst(self) -> None:
        """Called from a source's reader thread after a read: wake the reactor (once, if
        events wait and no drain is already on its way)."""
        with self._pending_lock:
            if self._drain_scheduled or not self._pending:
                return
            self._drain_scheduled = True
        self.reactor.callFromThread(self._drain)

    def _drain(self) -> None:
        """In the reactor thread: evaluate every event queued since the last drain."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
            self._drain_scheduled = False
        for event in batch:
            self.on_event(event)

    def on_event(self, event: dict[str, Any]) -> None:
        """Called in the reactor thread (sources via on_source_event, or the listener)."""
        etype = event.get("type")
        if (
            self.listener is None  # in-process: the cache is ours and the sources feed it
            and etype not in PROCESS_LIFECYCLE
            and is_unresolved(event.get("process") or {})
        ):
            if len(self._retrying) < MAX_RETRYING:
                # Out of order, but with its process: better than in order without it.
                self._retrying.append((self.reactor.seconds() + RESOLVE_RETRY, event))
                if self._retry_call is None:  # one timer for them all: short-lived
                    self._retry_call = self.reactor.callLater(RESOLVE_RETRY, self._retry_due)
                return
            self.unresolved += 1
        self._evaluate(event)

    def _retry_due(self) -> None:
        """Evaluate the held-back events that are due, with their process as known now."""
        self._retry_call = None
        now = self.reactor.seconds()
        waiting = self._retrying
        due = 0
        while due < len(waiting) and waiting[due][0] <= now:
            due += 1
        ready, self._retrying = waiting[:due], waiting[due:]
        if self._retrying:
            delay = max(self._retrying[0][0] - now, 0.0)
            self._retry_call = self.reactor.callLater(delay, self._retry_due)
        for _due, held in ready:
            process = self.cache.process(held["process"]["pid"])
            if is_unresolved(process):
                self.unresolved += 1
                self._evaluate(held)
            else:
                self.resolved_late += 1
                self._evaluate({**held, "process": process})

    def _evaluate(self, event: dict[str, Any]) -> None:
        etype = event.get("type")
        if etype in PROCESS_LIFECYCLE:
            # Other plugins follow processes (the workload list) through a host hook.
            self.agent.call_each("security_agent_process_event", agent=self.agent, event=event)
        matched = self.engine.handle(event)
        if etype == "exit" and self.listener is None:
            self._forget_container_if_gone(event)
        if (
            not matched
            and isinstance(etype, str)
            and etype in TYPE_BITS
            and event.get("source") == "file"
        ):
            self._offer_discarder(etype, event)

    def _forget_container_if_gone(self, event: dict[str, Any]) -> None:
        """The last cached process of a container exited: drop that container's values of
        ``set`` variables (a container id is never reused, so nothing would read them)."""
        container = (event.get("process") or {}).get("container") or {}
        cid = container.get("id")
        if cid and isinstance(cid, str) and not self.cache.container_alive(cid):
            self.engine.policies.variables.forget_container(cid)

    def _file_sources(self) -> list[FileSource]:
        return [s for s in self.sources if isinstance(s, FileSource)]

    def _offer_discarder(self, etype: str, event: dict[str, Any]) -> None:
        """The event matched nothing: when no rule of its type can match its file whatever
        the rest of the event, have the kernel drop that file's events of the type."""
        if self.engine.probes:  # a self-test sees every event: keep them coming meanwhile
            return
        file = (event.get(etype) or {}).get("file") or {}
        path = file.get("path")
        if not isinstance(path, str) or not path:
            return
        values = {f"{etype}.file.path": path, f"{etype}.file.name": file.get("name", "")}
        if self.engine.policies.ruleset.can_match(etype, values):
            return
        for source in self._file_sources():
            source.discard(path, etype)

    def _apply_interest(self) -> None:
        """Narrow the file sources to the event types the loaded rules can match (this also
        lifts the discarders, which were judged against the previous rules)."""
        if not self.settings.kernel_filters:
            return
        types = self.engine.policies.ruleset.event_types()
        for source in self._file_sources():
            try:
                source.restrict(types)
            except OSError as exc:
                log.warn(
                    "runtime security file source: could not narrow the kernel events to the "
                    "rules: {error}",
                    error=exc,
                )

    # -- policies -------------------------------------------------------------------------------

    def reload(self, reason: str) -> Deferred[PolicySet]:
        """Load the policies aside and swap them in; fires with the new set. Requests made
        while a load is running are served together by one more load once it is over."""
        if self._reloading is not None:
            waiter: Deferred[PolicySet] = Deferred()
            self._waiting.append((reason, waiter))
            return waiter
        self.last_reload_reason = reason
        d: Deferred[PolicySet] = self.agent.workers.defer(
            load_from_settings, self.settings, self.agent.version, self.reactor.seconds
        )
        self._reloading = d
        d.addCallbacks(self._swap, self._reload_failed, callbackArgs=(reason,))
        d.addBoth(self._next_reload)
        return d

    def _swap(self, policies: PolicySet, reason: str) -> PolicySet:
        # In the reactor thread, right before the swap: no action can write in between.
        carry_variables(self.engine.policies.variables, policies.variables)
        self.engine.swap(policies)
        self._apply_interest()
        self.reloads += 1
        for problem in policies.errors:
            log.error("policy error: {problem}", problem=problem)
        for rule in policies.rules.values():
            if rule.status == "error":
                log.error("rule {rule_id} not loaded: {error}", rule_id=rule.id, error=rule.error)
        log.info(
            "runtime security policies loaded ({reason}): {n} rules",
            reason=reason,
            n=len(policies.loaded),
        )
        return policies

    def _reload_failed(self, failure: Any) -> Any:
        self.reload_errors += 1
        log.error("unable to reload policies: {error}", error=failure.getErrorMessage())
        return failure

    def _next_reload(self, result: Any) -> Any:
        self._reloading = None
        waiting, self._waiting = self._waiting, []
        if waiting:
            again = self.reload(waiting[-1][0])

            def notify(outcome: Any) -> None:
                for _reason, waiter in waiting:
                    waiter.callback(outcome)

            again.addBoth(notify)
        return result

    def _start_watch(self) -> None:
        if not self.settings.watch_policies:
            return
        directory = self.settings.policies_dir
        if not os.path.isdir(directory):
            self._watch_error = f"{directory}: no such directory"
            return
        try:
            from twisted.internet import inotify

            watcher = inotify.INotify(self.reactor)  # type: ignore[no-untyped-call]
            watcher.startReading()  # type: ignore[no-untyped-call]
            mask = (
                inotify.IN_CLOSE_WRITE
                | inotify.IN_MOVED_TO
                | inotify.IN_MOVED_FROM
                | inotify.IN_DELETE
                | inotify.IN_CREATE
            )
            watcher.watch(  # type: ignore[no-untyped-call]
                FilePath(directory), mask=mask, callbacks=[self._policy_changed]
            )
        except Exception as exc:  # the reactor or the kernel cannot watch: say so in status
            self._watch_error = f"cannot watch {directory}: {exc}"
            return
        self._watcher = watcher

    def _policy_changed(self, _watch: Any, path: FilePath[Any], _mask: int) -> None:
        if not os.fsdecode(path.basename()).endswith(".policy"):  # inotify paths are bytes
            return
        if self._debounce is not None and self._debounce.active():
            self._debounce.reset(RELOAD_DEBOUNCE)
            return
        self._debounce = self.reactor.callLater(RELOAD_DEBOUNCE, self._reload_on_change)

    def _reload_on_change(self) -> None:
        self.reload("policy file changed").addErrback(lambda _: None)

    # -- drops ----------------------------------------------------------------------------------

    def housekeeping(self) -> None:
        """The periodic job: drop counters, then expired ``set`` variables."""
        self.poll_drops()
        self.engine.policies.variables.expire()

    def poll_drops(self) -> None:
        """Raise a security event for every source whose drop counter went up."""
        counters = [(stats.name, stats.drops) for stats in (s.stats() for s in self.sources)]
        counters.append((QUEUE_SOURCE, self.queue_drops))
        for name, drops in counters:
            before = self._seen_drops.get(name, 0)
            if drops > before:
                self._seen_drops[name] = drops
                self._emit_drops(name, drops - before, drops)

    def _emit_drops(self, source: str, new: int, total: int) -> None:
        self.drop_events += 1
        now = self.reactor.seconds()
        self.agent.events.emit(
            TRACK,
            {
                "agent": {
                    "rule_id": DROPS_RULE_ID,
                    "policy_name": "internal",
                    "policy_version": self.agent.version,
                    "version": self.agent.version,
                },
                "evt": {"name": "dropped_events", "category": "Security Agent", "outcome": "Error"},
                "date": iso_date(now),
                "hostname": self.agent.hostname,
                "title": f"Agent internal: {new} events dropped by the {source} source",
                "tags": [f"rule_id:{DROPS_RULE_ID}", f"source:{source}"],
                "dropped": {"source": source, "count": new, "total": total},
            },
        )
        log.warn(
            "runtime security source {source} dropped {new} events ({total} in total)",
            source=source,
            new=new,
            total=total,
        )

    # -- introspection --------------------------------------------------------------------------

    def _log_self_test(self, result: SelfTestResult) -> SelfTestResult:
        if result.ok:
            log.info("runtime security self-test succeeded")
        else:
            log.error("runtime security self-test failed: {error}", error=result.error)
        return result

    def process_cache_dump(self) -> list[dict[str, Any]]:
        """The cached processes, by pid, as SECL process dicts without ancestors."""
        out = []
        for pid in self.cache.pids():
            entry = self.cache.cached(pid)
            if entry is not None:  # it exited since pids() was taken
                out.append(dict(self.cache.snapshot(entry)))
        return out

    def status(self) -> dict[str, Any]:
        policies = self.engine.policies
        rule_stats = self.engine.rule_stats()
        sources = [s.stats().as_dict() for s in self.sources]
        counters = self.engine.counters
        return {
            "connected": bool(self.listener.connected) if self.listener else bool(self.sources),
            "mode": "event-monitoring socket" if self.settings.socket else "in-process",
            "eventReceived": counters.received,
            "eventSent": counters.sent,
            "eventMatched": counters.matched,
            "rateLimited": counters.rate_limited,
            "eventsByType": dict(sorted(counters.by_type.items())),
            "drops": sum(s["drops"] for s in sources) + self.queue_drops,
            "queueDrops": self.queue_drops,
            "processResolvedLate": self.resolved_late,
            "processUnresolved": self.unresolved,
            "dropEvents": self.drop_events,
            "sources": sources,
            "listener": self.listener.stats() if self.listener else None,
            "selfTests": self.self_test.result.as_dict(),
            "policies": {
                "dir": self.settings.policies_dir,
                "reloads": self.reloads,
                "reload_errors": self.reload_errors,
                "last_reload": self.last_reload_reason,
                "watch": self._watch_error or ("watching" if self._watcher else "off"),
                "errors": list(policies.errors),
            },
            "policiesStatus": [
                {
                    "Name": p.name,
                    "Source": p.source,
                    "Version": p.version,
                    "Status": [
                        {
                            "ID": rid,
                            "Status": policies.rules[rid].status,
                            "Error": policies.rules[rid].error,
                            **rule_stats.get(rid, {"matched": 0, "sent": 0, "rate_limited": 0}),
                        }
                        for rid in p.rules
                        if rid in policies.rules
                    ],
                    **({"Error": p.error} if p.error else {}),
                }
                for p in policies.policies
            ],
            "actions": dict(self.runner.counts),
            "variables": len(policies.variables),
        }


def _stop_sources(sources: list[Source]) -> None:
    for source in reversed(sources):
        source.stop()
