"""Datadog's check-sampler semantics, run by run."""

from __future__ import annotations

from plugins.checks.aggregation import (
    COUNT,
    COUNTER,
    GAUGE,
    HISTOGRAM,
    HISTORATE,
    MONOTONIC_COUNT,
    RATE,
    Aggregator,
    CheckSampler,
    payloads,
)


def sampler(interval=15.0, tags=()):
    return CheckSampler("c:1", interval, "myhost", list(tags))


def points(out):
    return {(s["metric"], s["type"]): s["points"][0][1] for s in out["series"]}


def submit(s, mtype, name, values, now, *, flush_first=False, tags=()):
    for v in values:
        s.add_sample(mtype, name, v, list(tags), "", flush_first, now)


def test_gauge_keeps_the_last_value_and_count_sums():
    s = sampler()
    submit(s, GAUGE, "g", [1, 5, 3], 10)
    submit(s, COUNT, "c", [1, 2, 3], 10)
    out = s.commit(10)
    assert points(out) == {("g", "gauge"): 3, ("c", "count"): 6}
    assert [x["host"] for x in out["series"]] == ["myhost", "myhost"]
    assert s.commit(25)["series"] == []  # nothing submitted, nothing sent


def test_rate_needs_two_runs_and_drops_negative_rates():
    s = sampler()
    submit(s, RATE, "r", [100], 0)
    assert s.commit(0)["series"] == []
    submit(s, RATE, "r", [130], 15)
    assert points(s.commit(15)) == {("r", "gauge"): 2.0}
    submit(s, RATE, "r", [10], 30)  # counter reset
    assert s.commit(30)["series"] == []
    submit(s, RATE, "r", [40], 45)
    assert points(s.commit(45)) == {("r", "gauge"): 2.0}


def test_monotonic_count_deltas_reset_safe_first_value_only_if_asked():
    s = sampler()
    submit(s, MONOTONIC_COUNT, "m", [10], 0)
    assert s.commit(0)["series"] == []
    submit(s, MONOTONIC_COUNT, "m", [15, 18], 15)
    assert points(s.commit(15)) == {("m", "count"): 8}
    submit(s, MONOTONIC_COUNT, "m", [4], 30)  # reset: nothing counted for the drop
    assert points(s.commit(30)) == {("m", "count"): 0}
    submit(s, MONOTONIC_COUNT, "m", [9], 45)
    assert points(s.commit(45)) == {("m", "count"): 5}
    first = sampler()
    submit(first, MONOTONIC_COUNT, "m", [10], 0, flush_first=True)
    assert points(first.commit(0)) == {("m", "count"): 10}


def test_histogram_aggregates():
    s = sampler(interval=10)
    submit(s, HISTOGRAM, "h", list(range(1, 101)), 5)
    assert points(s.commit(5)) == {
        ("h.max", "gauge"): 100,
        ("h.median", "gauge"): 50,
        ("h.avg", "gauge"): 50.5,
        ("h.count", "rate"): 10.0,
        ("h.95percentile", "gauge"): 95,
    }


def test_historate_and_counter():
    s = sampler(interval=10)
    s.add_sample(HISTORATE, "hr", 0, [], "", False, 0)
    s.add_sample(HISTORATE, "hr", 10, [], "", False, 1)
    s.add_sample(HISTORATE, "hr", 30, [], "", False, 2)
    submit(s, COUNTER, "inc", [1, 1, 1, 1, 1], 2)
    out = points(s.commit(2))
    assert out[("hr.max", "gauge")] == 20
    assert out[("hr.count", "rate")] == 0.2
    assert out[("inc", "rate")] == 0.5


def test_contexts_differ_by_tags_and_host_and_extra_tags_are_added():
    s = sampler(tags=["service:web"])
    s.add_sample(GAUGE, "g", 1, ["b", "a"], "", False, 0)
    s.add_sample(GAUGE, "g", 2, ["a", "b"], "", False, 0)
    s.add_sample(GAUGE, "g", 3, ["a"], "other", False, 0)
    series = s.commit(0)["series"]
    assert [(x["tags"], x["host"], x["points"][0][1]) for x in series] == [
        (["a", "b", "service:web"], "myhost", 2),
        (["a", "service:web"], "other", 3),
    ]


def test_aggregator_take_and_payload_shapes():
    clock = [100.0]
    agg = Aggregator(lambda: clock[0])
    agg.sampler("c:1", 15, "h", []).add_sample(GAUGE, "g", 1, [], "", False, 100)
    agg.sampler("c:1").add_service_check("sc", 0, [], "", "", 100)
    committed = agg.commit("c:1")
    assert committed["series"][0] == {
        "metric": "g",
        "points": [[100, 1]],
        "tags": [],
        "host": "h",
        "type": "gauge",
        "interval": 0,
        "source_type_name": "System",
    }
    flushed = payloads(agg.take())
    assert [p["kind"] for p in flushed] == ["series", "service_checks"]
    assert payloads(agg.take()) == []
    assert agg.stats()["flushed"] == {"series": 1, "service_checks": 1, "events": 0, "sketches": 0}


def test_contexts_not_submitted_for_five_runs_are_forgotten():
    s = sampler()
    for run in range(3):
        submit(s, GAUGE, "g", [1], run, tags=[f"pid:{run}"])
        s.commit(run)
    assert len(s._contexts) == 3
    for run in range(3, 8):
        s.commit(run)
    assert len(s._contexts) == 0
