"""Compliance: CPU time of one full run of the shipped linux-baseline benchmark on this host,
and the cost of one Rego rule (module load and compile, input resolution, query, mapping)
against evaluating only its ``data.datadog.findings`` query on an input prepared beforehand."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from plugins.compliance import rego_eval
from plugins.compliance.benchmark import Benchmark, Rule, load_benchmark
from plugins.compliance.checker import Checker
from plugins.compliance.environment import HostEnv
from plugins.compliance.service import builtin_benchmarks_dir


def _cpu(fn: Any) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _best_of(repeat: int, fn: Any) -> float:
    return min(_cpu(fn) for _ in range(repeat))


def _full_run(bench: Benchmark, env: HostEnv) -> None:
    checker = Checker(env, "bench", 1200)
    for rule in bench.rules:
        checker.events(bench, rule)


def _rego_rules(bench: Benchmark) -> list[Rule]:
    return [r for r in bench.rules if not r.is_xccdf and not r.error]


def run() -> list[dict[str, Any]]:
    bench = load_benchmark(os.path.join(builtin_benchmarks_dir(), "linux-baseline.yaml"))
    env = HostEnv(hostname=socket.gethostname())
    env.load_os_release()
    full = _best_of(3, lambda: _full_run(bench, env))

    rules = _rego_rules(bench)
    checker = Checker(env, "bench", 1200)
    prepared = []
    for rule in rules:
        modules = rego_eval.rule_modules(bench, rule, checker.modules)
        doc = checker.resolver.resolve(rule, {"ruleID": rule.id, "hostname": env.hostname})
        prepared.append((rego_eval.prepare(modules), doc))

    def whole_rules() -> None:
        fresh = Checker(env, "bench", 1200)
        for rule in rules:
            fresh.findings(bench, rule)

    def queries_only() -> None:
        for interp, doc in prepared:
            rego_eval.query_findings(interp, doc)

    per_rule = _best_of(3, whole_rules) / len(rules)
    per_query = _best_of(3, queries_only) / len(rules)
    return [
        {
            "name": "compliance.linux_baseline.full_run_cpu",
            "unit": "s",
            "value": round(full, 3),
            "rules": len(bench.rules),
            "baseline": round(per_query * len(rules), 3),
            "baseline_name": "the same rules' queries alone, on prepared inputs",
            "ratio": round(full / (per_query * len(rules)), 1),
            "target": "< 2 s of CPU",
        },
        {
            "name": "compliance.rego.cost_per_rule",
            "unit": "ms",
            "value": round(per_rule * 1000, 2),
            "baseline": round(per_query * 1000, 3),
            "baseline_name": "data.datadog.findings query on a prepared interpreter and input",
            "ratio": round(per_rule / per_query, 1),
        },
    ]


if __name__ == "__main__":
    import json

    for result in run():
        print(json.dumps(result))
