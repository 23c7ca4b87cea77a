"""The SDK without a host: upstream's public API against the in-process stubs."""

from __future__ import annotations

import json

import pytest

import datadog_checks
from datadog_checks.base import (
    AgentCheck,
    ConfigurationError,
    ensure_bytes,
    ensure_unicode,
    is_affirmative,
    to_native_string,
)
from datadog_checks.base.agent import agent_running
from datadog_checks.base.stubs.aggregator import AggregatorStub
from datadog_checks.base.utils.subprocess_output import get_subprocess_output


class Demo(AgentCheck):
    __NAMESPACE__ = "demo"

    def check(self, instance):
        instance["mutated"] = True  # must not leak into self.instance
        self.gauge("g", 1, tags=["a:b", None, b"c:d"])
        self.gauge("raw.g", 2, raw=True)
        self.gauge("skipped", None)
        self.count("c", 2)
        self.count("c", 3)
        self.monotonic_count("m", 10, flush_first_value=True)
        self.rate("r", 5, device_name="sda")
        self.histogram("h", 1)
        self.historate("hr", 1)
        self.service_check("up", self.OK, tags=["t"])
        self.service_check("down", self.CRITICAL, message="refused")
        self.event({"msg_title": "t", "msg_text": "hello", "tags": ["e"]})
        self.warning("warned %s", "once")


def test_constructor_forms():
    positional = AgentCheck("n", {"i": 1}, [{"a": 1}])
    assert (positional.name, positional.init_config, positional.instance) == (
        "n",
        {"i": 1},
        {"a": 1},
    )
    legacy = AgentCheck("n", {}, {"agent": "config"}, [{"b": 2}])
    assert legacy.agentConfig == {"agent": "config"}
    assert legacy.instance == {"b": 2}
    keywords = AgentCheck(name="n", init_config={}, instances=({"c": 3},))
    assert keywords.instance == {"c": 3}
    assert keywords.instances == [{"c": 3}]
    empty = AgentCheck("n", {}, [])
    assert empty.instance is None


def test_run_success_and_submissions(aggregator):
    check = Demo("demo", {}, [{"k": "v"}])
    assert check.run() == ""
    assert check.instance == {"k": "v"}
    assert not agent_running()
    aggregator.assert_metric("demo.g", value=1, tags=["a:b", "c:d"], metric_type=aggregator.GAUGE)
    aggregator.assert_metric("raw.g", value=2)
    assert aggregator.metrics("demo.skipped") == []
    aggregator.assert_metric("demo.c", value=5, count=2)  # COUNT values are summed
    aggregator.assert_metric(
        "demo.m", value=10, flush_first_value=True, metric_type=AggregatorStub.MONOTONIC_COUNT
    )
    aggregator.assert_metric("demo.r", value=5, device="sda", tags=["device:sda"])
    aggregator.assert_metric("demo.h", metric_type=aggregator.HISTOGRAM)
    aggregator.assert_metric("demo.hr", metric_type=aggregator.HISTORATE)
    aggregator.assert_service_check("demo.up", status=AgentCheck.OK, tags=["t"], message="")
    aggregator.assert_service_check("demo.down", status=2, message="refus.*")
    aggregator.assert_event("hello", tags=["e"], source_type_name="demo")
    aggregator.assert_all_metrics_covered()
    assert check.get_warnings() == ["warned once"]
    assert check.get_warnings() == []


def test_run_error_is_compact_json():
    class Boom(AgentCheck):
        def check(self, instance):
            raise ConfigurationError("boom")

    result = Boom("b", {}, [{}]).run()
    assert result.startswith('[{"message":"boom","traceback":"Traceback (most recent call last):')
    (error,) = json.loads(result)
    assert error["traceback"].endswith("ConfigurationError: boom\n")


def test_non_float_value_raises_without_a_host():
    class Bad(AgentCheck):
        def check(self, instance):
            self.gauge("g", "abc")

    (error,) = json.loads(Bad("b", {}, [{}]).run())
    assert error["message"] == (
        "Metric: 'g' has non float value: 'abc'. Only float values can be submitted as metrics."
    )


def test_metadata_external_tags_cache_and_check_id(datadog_agent):
    check = AgentCheck("hello", {}, [{}])
    check.check_id = "hello:abc123"
    check.set_metadata("version", "1.2.3")
    check.set_metadata("flavor", "vanilla")
    datadog_agent.assert_metadata(
        "hello:abc123",
        {
            "version.major": "1",
            "version.minor": "2",
            "version.patch": "3",
            "version.raw": "1.2.3",
            "version.scheme": "semver",
            "flavor": "vanilla",
        },
    )
    check.set_external_tags([("peer", {"src": ["a", "b"]})])
    datadog_agent.assert_external_tags("peer", {"src": ["b", "a"]})
    check.write_persistent_cache("k", "v")
    assert datadog_agent.read_persistent_cache("hello:abc123_k") == "v"
    assert check.read_persistent_cache("k") == "v"
    check.cancel()


def test_helpers():
    assert [
        is_affirmative(v) for v in ("yes", "TRUE", "1", "y", "On", "no", "0", "", 1, 0, None)
    ] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        True,
        False,
        False,
    ]
    assert ensure_unicode(b"caf\xc3\xa9") == "café"
    assert to_native_string("x") == "x"
    assert ensure_bytes("é") == b"\xc3\xa9"
    assert (
        AgentCheck("n", {}, [{}]).normalize("Some-Metric Name", prefix="p") == "p.Some_Metric_Name"
    )
    assert AgentCheck("n", {}, [{}]).normalize("FooBar", fix_case=True) == "foo_bar"
    assert get_subprocess_output(["sh", "-c", "echo hi"]) == ("hi\n", "", 0)


def test_legacy_import_paths_and_namespace_package():
    from datadog_checks.checks import AgentCheck as Legacy
    from datadog_checks.config import is_affirmative as legacy_is_affirmative
    from datadog_checks.errors import ConfigurationError as LegacyError

    assert Legacy is AgentCheck
    assert legacy_is_affirmative is is_affirmative
    assert LegacyError is ConfigurationError
    assert hasattr(datadog_checks, "__path__")
    assert len(datadog_checks.__path__) >= 1


def test_check_logger_has_trace():
    check = AgentCheck("n", {}, [{}])
    check.log.trace("only at trace level %s", "x")
    assert check.log.logger.name == "datadog_checks.base.checks.base.n"


def test_not_implemented_check_reports_an_error():
    (error,) = json.loads(AgentCheck("n", {}, [{}]).run())
    assert error["message"] == ""
    assert "NotImplementedError" in error["traceback"]


def test_stub_assertion_messages(aggregator):
    with pytest.raises(AssertionError, match="Needed at least 1 candidates for 'missing', got 0"):
        aggregator.assert_metric("missing")


def test_utils_tagging_and_containers():
    from datadog_checks.base.stubs.tagging import tagger as stub_tagger
    from datadog_checks.base.utils.containers import hash_mutable
    from datadog_checks.base.utils.tagging import GENERIC_TAGS, tagger

    stub_tagger.reset()
    stub_tagger.set_tags("container_id://x", stub_tagger.HIGH, ["a:b"])
    assert tagger.tag("container_id://x", 2) == ["a:b"]
    assert "env" in GENERIC_TAGS
    assert hash_mutable({"a": [1, {"b": 2}]}) == hash_mutable({"a": [1, {"b": 2}]})
    assert hash_mutable({"a": 1, "b": 2}) == hash_mutable({"b": 2, "a": 1})
