"""The rule engine: kernel events in, security events out.

``handle(event)`` runs in the reactor thread (sources hop over with ``callFromThread``). It
evaluates the current :class:`PolicySet`, applies ``every`` (a rule fires at most once per
period), runs the rule's actions and emits the security event on the ``runtime`` track.
``swap`` replaces the policy set in one assignment, so an event meets either the old set or
the new one, never a mix. Probes (the self-test's temporary rules) see every event too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, succeed

from plugins.runtime_security.actions import ActionRunner
from plugins.runtime_security.policy_loader import PolicySet, RuleState
from plugins.runtime_security.security_event import build_security_event

TRACK = "runtime"
Probe = Callable[[Mapping[str, Any]], None]


@dataclass
class RuleCounters:
    matched: int = 0
    sent: int = 0
    rate_limited: int = 0
    last_fired: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"matched": self.matched, "sent": self.sent, "rate_limited": self.rate_limited}


@dataclass
class EngineCounters:
    received: int = 0
    matched: int = 0
    sent: int = 0
    rate_limited: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class RuleEngine:
    def __init__(
        self,
        policies: PolicySet,
        runner: ActionRunner,
        emit: Callable[[str, dict[str, Any]], Any],
        clock: Callable[[], float],
        *,
        agent_version: str,
        hostname: str,
    ) -> None:
        self.policies = policies
        self.runner = runner
        self.emit = emit
        self.clock = clock
        self.agent_version = agent_version
        self.hostname = hostname
        self.counters = EngineCounters()
        self.rules: dict[str, RuleCounters] = {}
        self.probes: list[Probe] = []

    def swap(self, policies: PolicySet) -> None:
        """Make ``policies`` the rules every following event meets."""
        self.policies = policies

    def handle(self, event: Mapping[str, Any]) -> list[str]:
        """Evaluate one event; returns the ids of the rules it matched."""
        counters = self.counters
        counters.received += 1
        etype = event.get("type")
        if isinstance(etype, str):
            counters.by_type[etype] = counters.by_type.get(etype, 0) + 1
        if self.probes:  # only while a self test runs; a probe may remove itself
            for probe in list(self.probes):
                probe(event)
        policies = self.policies  # one read: a swap during this call does not mix sets
        matched = policies.ruleset.evaluate(event)
        for rule_id in matched:
            self._fire(policies, policies.rules[rule_id], event)
        if etype == "exit":
            pid = (event.get("process") or {}).get("pid")
            if isinstance(pid, int):
                policies.variables.forget_process(pid)
        return matched

    def _fire(self, policies: PolicySet, rule: RuleState, event: Mapping[str, Any]) -> None:
        counters = self.rules.setdefault(rule.id, RuleCounters())
        counters.matched += 1
        self.counters.matched += 1
        now = self.clock()
        if (
            rule.every is not None
            and counters.last_fired is not None
            and now - counters.last_fired < rule.every
        ):
            counters.rate_limited += 1
            self.counters.rate_limited += 1
            return
        counters.last_fired = now
        security_event = build_security_event(
            event, rule, agent_version=self.agent_version, hostname=self.hostname
        )
        reports: list[Any] = []
        for action in rule.actions:
            report = self.runner.run(rule.id, action, event, policies.variables)
            if report is not None:
                reports.append(report)
        if any(isinstance(r, Deferred) for r in reports):
            waiting = [r if isinstance(r, Deferred) else succeed(r) for r in reports]
            d = gatherResults(waiting, consumeErrors=True)
            d.addBoth(self._send_with, security_event, counters)
            return
        self._send_with(reports, security_event, counters)

    def _send_with(
        self, reports: Any, security_event: dict[str, Any], counters: RuleCounters
    ) -> None:
        if not isinstance(reports, list):  # a failed hash: say so instead of losing the event
            reports = [{"type": "hash", "state": f"failed: {reports.getErrorMessage()}"}]
        security_event["agent"]["rule_actions"] = reports
        self.emit(TRACK, security_event)
        counters.sent += 1
        self.counters.sent += 1

    def rule_stats(self) -> dict[str, dict[str, Any]]:
        return {rid: c.as_dict() for rid, c in self.rules.items()}
