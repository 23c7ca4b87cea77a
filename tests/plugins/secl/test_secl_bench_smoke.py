"""The SECL benchmark's rules compile and its three evaluation paths agree (a small run; the
real one replays a million events)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_secl.py"


def test_benchmark_runs_and_paths_agree():
    spec = importlib.util.spec_from_file_location("bench_secl_smoke", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main, scaled = module.run(n_events=3000, pool_size=1500)
    assert main["name"] == "secl.evaluate.events_per_second"
    assert main["rules"] == len(module.RULES) == 42
    assert main["events"] == 3000
    assert main["matches"] > 0
    assert scaled["rules"] == 210
    assert scaled["events"] == 600
