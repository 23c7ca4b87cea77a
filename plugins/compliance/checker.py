"""Evaluating rules into CheckEvents: the default rule filter, Rego and XCCDF dispatch.

:class:`Checker` is pure work (files, /proc, netlink, regopy, oscap): it runs in the host's
worker threads and never touches the reactor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from plugins.compliance import rego_eval, xccdf_eval
from plugins.compliance.benchmark import Benchmark, Rule
from plugins.compliance.environment import HostEnv
from plugins.compliance.filters import filter_matches, host_facts
from plugins.compliance.rego_eval import Finding, RegoEvalError
from plugins.compliance.resolvers import IncompatibleEnvironment, ResolveError, Resolver
from plugins.compliance.xccdf_eval import XccdfError
from plugins.secl import SECLError


def default_rule_filter(env: HostEnv) -> Callable[[Rule], bool]:
    """Datadog's ``DefaultRuleFilter``: scope against the environment, XCCDF switch, filters.

    A filter that does not compile keeps the rule: it is then reported with the SECL error
    (``bad filter: rule r1, line 1, column 9: ...``) while the other rules still run.
    """
    facts = host_facts(env)

    def keep(rule: Rule) -> bool:
        if env.kubernetes:
            if rule.skip_on_kubernetes:
                return False
        elif any(s in ("kubernetesNode", "kubernetesCluster") for s in rule.scope):
            return False
        if rule.is_xccdf and not env.xccdf_enabled:
            return False
        for text in rule.filters:
            try:
                if not filter_matches(text, facts, rule.id):
                    return False
            except SECLError as exc:
                rule.error = f"bad filter: {exc}"
                return True
        return True

    return keep


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Checker:
    """Evaluates rules of benchmarks on one host environment."""

    def __init__(
        self,
        env: HostEnv,
        agent_version: str,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.env = env
        self.agent_version = agent_version
        self.interval = interval
        self.clock = clock
        self.modules = rego_eval.ModuleCache()
        self.resolver = Resolver(env)
        self.scans = xccdf_eval.Scans()

    def new_run(self) -> None:
        """Forget what the previous run cached (processes, packages, users and groups, audit
        rules, modules)."""
        self.modules = rego_eval.ModuleCache()
        self.resolver = Resolver(self.env)

    def findings(self, bench: Benchmark, rule: Rule) -> list[Finding]:
        """The rule's findings; resolution and evaluation problems become findings too."""
        host = ("host", self.env.hostname)
        if rule.error:
            return [Finding("error", *host, {"error": rule.error})]
        try:
            return self._evaluate(bench, rule)
        except IncompatibleEnvironment as exc:
            return [Finding("skipped", *host, {"error": str(exc)})]
        except Exception as exc:  # a resolver bug must not stop the other rules either
            return [Finding("error", *host, {"error": _error_message(exc)})]

    def _evaluate(self, bench: Benchmark, rule: Rule) -> list[Finding]:
        if rule.is_xccdf:
            return xccdf_eval.evaluate(self.env, bench.dirname, rule.inputs[0].spec, self.scans)
        modules = rego_eval.rule_modules(bench, rule, self.modules)
        interp = rego_eval.prepare(modules)
        context = {
            "ruleID": rule.id,
            "hostname": self.env.hostname,
            "kubernetes_cluster": "",
            "container_id": "",
        }
        doc = self.resolver.resolve(rule, context)
        return rego_eval.map_results(rego_eval.query_findings(interp, doc))

    def events(self, bench: Benchmark, rule: Rule) -> list[dict[str, Any]]:
        expire_at = rfc3339(self.clock() + 2 * self.interval)
        events = []
        for finding in self.findings(bench, rule):
            event = self.event(bench, rule, finding, expire_at)
            if "docker" in rule.scope:
                # A finding about a container the docker input listed carries that
                # container's id and image, as Datadog fills them from its workload metadata.
                event["container"] = self.resolver.container_of(finding.resource_id)
            events.append(event)
        return events

    def event(
        self, bench: Benchmark, rule: Rule, finding: Finding, expire_at: str
    ) -> dict[str, Any]:
        """The CheckEvent JSON for one finding."""
        return {
            "agent_version": self.agent_version,
            "agent_rule_id": rule.id,
            "agent_rule_version": 0,
            "agent_framework_id": bench.framework,
            "evaluator": rule.evaluator,
            "expire_at": expire_at,
            "result": finding.result,
            "resource_type": finding.resource_type,
            "resource_id": finding.resource_id,
            "container": None,
            "k8s_managed": None,
            "tags": [*bench.tags, f"host:{self.env.hostname}"],
            "data": dict(finding.data),
        }


def _error_message(exc: Exception) -> str:
    if isinstance(exc, (RegoEvalError, ResolveError, XccdfError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return f"{type(exc).__name__}: {exc}"
