"""Custom checks: the host's overhead per check run, and its CPU with 1000 instances.

1. ``checks.host_overhead_per_run``: one run of a check submitting 100 metric samples, the
   way the host does it (scheduler turn, runner hand-off, the builtin ``aggregator`` module's
   argument checks, aggregation and commit) against calling ``run()`` on the same check with
   the SDK's stub aggregator, in the same process. Target: at most 1.3x.
2. ``checks.cpu_1000_instances``: 1000 instances at the default 15 s interval on a fake
   clock; the CPU the host spends on them (everything but the checks' own ``check()``)
   per second of schedule, as a percentage of one core. Target: below 5 %.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from twisted.internet import defer, task

SAMPLES = 100
RUNS = 2_000
INSTANCES = 1_000
SIMULATED = 60.0

CHECK = """
from datadog_checks.base import AgentCheck

class BenchCheck(AgentCheck):
    def check(self, instance):
        tags = ["bench:yes", "instance:%s" % instance.get("i", 0)]
        for n in range(instance.get("samples", 100)):
            self.gauge("bench.gauge", n, tags=tags)
"""


class _InlinePool:
    """Runs checks inline: the benchmark measures CPU, not thread hand-off latency."""

    size = 1

    def start(self) -> None:
        pass

    def defer(self, f: Any) -> Any:
        return defer.maybeDeferred(f)

    def stats(self) -> dict[str, int]:
        return {"Workers": 1, "Busy": 0}

    def stop(self) -> None:
        pass


def _agent(tmp: str, clock: task.Clock, instances: int, samples: int) -> Any:
    from host.bootstrap import AgentOptions, build_agent

    confd, checksd = os.path.join(tmp, "conf.d"), os.path.join(tmp, "checks.d")
    os.makedirs(os.path.join(confd, "bench_check.d"), exist_ok=True)
    os.makedirs(checksd, exist_ok=True)
    with open(os.path.join(checksd, "bench_check.py"), "w") as f:
        f.write(CHECK)
    with open(os.path.join(confd, "bench_check.d", "conf.yaml"), "w") as f:
        f.write("instances:\n")
        for i in range(instances):
            f.write(f"  - {{i: {i}, samples: {samples}}}\n")
    cfg = os.path.join(tmp, "security-agent.yaml")
    with open(cfg, "w") as f:
        f.write(f"run_path: {tmp}/run\nconfd_path: {confd}\nadditional_checksd: {checksd}\n")
    agent = build_agent(AgentOptions(cfgpaths=[cfg]), clock, entry_points=lambda: [], env={})
    return agent


def _stub_baseline(check: Any, runs: int) -> float:
    """Seconds per ``run()`` with no host: the SDK's stub aggregator records the samples."""
    from datadog_checks.base.stubs import aggregator

    names = ("aggregator", "datadog_agent")
    saved: dict[str, Any] = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    try:
        best = float("inf")
        for _ in range(3):
            aggregator.reset()
            t0 = time.perf_counter()
            for _ in range(runs):
                check.run()
            best = min(best, time.perf_counter() - t0)
        aggregator.reset()
        return best / runs
    finally:
        sys.modules.update(saved)


def _overhead() -> dict[str, Any]:
    from plugins.checks.runner import CheckRunner

    with tempfile.TemporaryDirectory() as tmp:
        clock = task.Clock()
        agent = _agent(tmp, clock, 1, SAMPLES)
        runner = CheckRunner(agent, pool=_InlinePool())
        runner.start()
        (instance,) = runner.instances
        job = runner.jobs[instance.check_id]
        try:
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(RUNS):
                    job.fire()  # the scheduler's turn: runner, builtins, aggregation, commit
                best = min(best, time.perf_counter() - t0)
                runner.host.aggregator.take()
            hosted = best / RUNS
            assert instance.stats.total_runs >= RUNS
            assert not instance.stats.last_error
            baseline = _stub_baseline(instance.check, RUNS)
        finally:
            runner.stop()
    return {
        "name": "checks.host_overhead_per_run",
        "unit": "ratio",
        "value": round(hosted / baseline, 3),
        "baseline": round(baseline * 1e6, 1),
        "baseline_name": f"run() of a {SAMPLES}-sample check on the SDK's stub aggregator (us)",
        "hosted_run_us": round(hosted * 1e6, 1),
        "target": "<= 1.3",
    }


def _cpu_1000() -> dict[str, Any]:
    from plugins.checks.runner import CheckRunner

    with tempfile.TemporaryDirectory() as tmp:
        clock = task.Clock()
        agent = _agent(tmp, clock, INSTANCES, 1)
        runner = CheckRunner(agent, pool=_InlinePool())
        runner.start()
        try:
            # The checks' own work, measured alone: run() of each instance as often as the
            # schedule will call it.
            turns = int(SIMULATED / 15.0) + 1
            t0 = time.process_time()
            for _ in range(turns):
                for instance in runner.instances:
                    instance.check.run()
            own = time.process_time() - t0
            runner.host.aggregator.take()
            t0 = time.process_time()
            for _ in range(int(SIMULATED * 10)):
                clock.advance(0.1)
            total = time.process_time() - t0
            runs = sum(i.stats.total_runs for i in runner.instances)
        finally:
            runner.stop()
    host_cpu = max(0.0, total - own * runs / (turns * INSTANCES))
    return {
        "name": "checks.cpu_1000_instances",
        "unit": "percent_of_core",
        "value": round(host_cpu / SIMULATED * 100, 2),
        "baseline": round(own / (turns * INSTANCES) * 1e6, 1),
        "baseline_name": "run() of one instance (us): the checks' own work, excluded",
        "runs": runs,
        "simulated_seconds": SIMULATED,
        "target": "< 5",
    }


def run() -> list[dict[str, Any]]:
    return [_overhead(), _cpu_1000()]


if __name__ == "__main__":
    import json

    for result in run():
        print(json.dumps(result))
