"""Runtime security source overhead: CPU used by the agent process (all its threads) while a
child process runs about 1,000 exec/s, with the kernel sources delivering every event to a
callback. The baseline is the same load measured in the same run with no source started, so
the figure is the sources' own cost. Drops must stay at zero.

Two configurations: the process source alone (what an exec load exercises: the issue's
figure), and process + file (fanotify filesystem mark, watching an idle directory) + audit,
which also pays for every open on the root filesystem and every audited syscall of the
whole host, so it varies with whatever else the machine is doing.

The load lasts RS_BENCH_SECONDS (30 s by default, as the issue asks) per configuration.
Needs root (netlink process connector, fanotify filesystem marks, audit)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from plugins.runtime_security.sources import AuditSource, FileSource, ProcessCache, ProcessSource
from plugins.runtime_security.sources.base import Source

RATE = 1000

# Python's posix_spawn + waitpid loop does not reach 1,000/s alone on a 2-vCPU VM, so
# WORKERS spawner processes share the rate; each prints the rate it achieved.
WORKERS = 2
LOAD = """
import os, sys, time
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
start = time.monotonic()
count = 0
while True:
    now = time.monotonic()
    if now - start >= seconds:
        break
    due = int((now - start) * rate)
    while count < due:
        pid = os.posix_spawn("/bin/true", ["/bin/true"], {})
        os.waitpid(pid, 0)
        count += 1
    time.sleep(0.001)
print(count / (time.monotonic() - start), flush=True)
"""


def exec_load(seconds: float) -> float:
    """Run the exec load for ``seconds``; returns the exec/s achieved."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD, str(RATE // WORKERS), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    return sum(float(w.communicate()[0].strip() or 0) for w in workers)


def _measure(sources: list[Source], seconds: float) -> dict[str, Any]:
    delivered = 0

    def callback(event: dict[str, Any]) -> None:
        nonlocal delivered
        delivered += 1

    for source in sources:
        source.start(callback)
    try:
        inactive = [f"{s.name}: {s.stats().reason}" for s in sources if not s.stats().active]
        time.sleep(0.5)  # start-up (process cache seeding) is not the steady state we measure
        cpu0, wall0 = time.process_time(), time.monotonic()
        exec_rate = exec_load(seconds)
        time.sleep(0.2)  # let the readers drain the tail of the load
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        for source in sources:
            source.stop()
    stats = [s.stats() for s in sources]
    unresolved = sum(s.detail.get("exec_unresolved", 0) for s in stats)
    recovered = sum(s.detail.get("exec_path_recovered", 0) for s in stats)
    return {
        "exec_unresolved": unresolved,
        "exec_path_recovered": recovered,
        "cpu_percent": 100.0 * cpu / wall,
        "exec_per_s": exec_rate,
        "events": sum(s.events for s in stats),
        "events_by_source": {s.name: s.events for s in stats},
        "delivered": delivered,
        "drops": sum(s.drops for s in stats),
        "inactive": inactive,
    }


def run() -> list[dict[str, Any]]:
    seconds = float(os.environ.get("RS_BENCH_SECONDS", "30"))
    baseline = _measure([], seconds)
    results = []
    with tempfile.TemporaryDirectory() as watched:
        configs: dict[str, Callable[[ProcessCache], list[Source]]] = {
            "process": lambda cache: [ProcessSource(cache)],
            "process+file+audit": lambda cache: [
                ProcessSource(cache),
                FileSource(cache, [watched]),
                AuditSource(cache),
            ],
        }
        for label, build in configs.items():
            measured = _measure(build(ProcessCache()), seconds)
            overhead = measured["cpu_percent"] - baseline["cpu_percent"]
            results.append(
                {
                    "name": f"runtime_security.sources.cpu_at_1k_exec_per_s.{label}",
                    "unit": "% of one core",
                    "value": round(overhead, 2),
                    "baseline": round(baseline["cpu_percent"], 2),
                    "baseline_name": "agent CPU under the same exec load with no source",
                    "measured_cpu_percent": round(measured["cpu_percent"], 2),
                    "exec_per_s": round(measured["exec_per_s"], 1),
                    "seconds": seconds,
                    "events": measured["events"],
                    "events_by_source": measured["events_by_source"],
                    "drops": measured["drops"],
                    # Execs whose /proc was gone before we read it (the /bin/true of the load
                    # lives well under a millisecond): their exec events have no path/argv.
                    "exec_unresolved": measured["exec_unresolved"],
                    # ... of which the executable path was still recovered from fanotify.
                    "exec_path_recovered": measured["exec_path_recovered"],
                    "inactive_sources": measured["inactive"],
                    "target": "< 10 % of one core, 0 drops",
                    "ok": overhead < 10.0 and measured["drops"] == 0,
                }
            )
    return results


if __name__ == "__main__":
    import json

    for result in run():
        print(json.dumps(result))
