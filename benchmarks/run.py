"""Run every benchmark and print one JSON object per result.

Each result carries the baseline it was measured against in the same run, so a number reads
as a ratio on whatever machine runs it. Usage: ``python benchmarks/run.py [NAME...]``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "bench_host_startup",
    "bench_scheduler_overhead",
    "bench_compliance",
    "bench_rs_sources",
    "bench_sinks",
    "bench_ipc_api",
    "bench_checks",
    "bench_secl",
    "bench_runtime",
]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    selected = [name for name in BENCHMARKS if not argv or any(a in name for a in argv)]
    for name in selected:
        module = importlib.import_module(name)
        for result in module.run():
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
