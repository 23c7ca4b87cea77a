"""The Prometheus collector on its own: what it makes of snapshots, bounds included."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from plugins.expvar.telemetry import MAX_VAR_SAMPLES, make_registry, numeric_leaves


def scrape(snapshot):
    registry = make_registry(lambda: snapshot)
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_published_numbers_are_bounded_and_the_rest_counted():
    snapshot = {"big": {str(i): i for i in range(MAX_VAR_SAMPLES + 25)}}
    families = scrape(snapshot)
    assert len(families["security_agent_var"].samples) == MAX_VAR_SAMPLES
    assert families["security_agent_var_dropped"].samples[0].value == 25.0


def test_broken_builtin_values_are_skipped_not_fatal():
    families = scrape(
        {
            "memstats": {"error": "OSError: boom"},
            "scheduler": {"error": "RuntimeError: x"},
            "events": {"error": "RuntimeError: y"},
            "workers": {"error": "RuntimeError: z"},
            "expvar": {"requests": {"by_code": {}, "by_path": {}}, "shadowed": []},
            "mine": {"error": "ValueError: nope"},
        }
    )
    assert "security_agent_scheduler_runs" not in families
    assert "security_agent_process_resident_memory_bytes" not in families
    assert families["security_agent_var"].samples == []
    assert families["security_agent_var_dropped"].samples[0].value == 0.0


def test_numeric_leaves_walks_maps_and_lists_to_depth_four():
    value = {"a": 1, "b": [2.5, {"c": 3}], "d": True, "e": "x", "f": {"g": {"h": {"i": {"j": 9}}}}}
    assert list(numeric_leaves(value)) == [("a", 1.0), ("b.0", 2.5), ("b.1.c", 3.0)]


def test_our_registry_is_not_the_global_one():
    registry = make_registry(dict)
    assert registry is not REGISTRY
    assert b"security_agent_var_dropped" not in generate_latest(REGISTRY)
