"""The builtin modules behave like rtloader's (cases ported from rtloader/test/*)."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from plugins.checks.builtin_modules import BUILTIN_NAMES
from plugins.checks.runner import ChecksSetup


@pytest.fixture
def setup(checks_env):
    agent = checks_env.agent(extra_config="log_level: warning\ncluster_name: the-cluster\n")
    s = ChecksSetup(agent)
    s.install()
    yield s
    s.uninstall()


def run(code):
    """rtloader's harness: run code, report ``Type: message`` of an exception."""
    try:
        exec(code, {})
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return "ok"


def test_every_builtin_module_is_installed_and_removed(checks_env):
    agent = checks_env.agent()
    s = ChecksSetup(agent)
    s.install()
    try:
        for name in BUILTIN_NAMES:
            assert sys.modules[name] is s.builtins.modules[name]
        import aggregator

        assert (aggregator.GAUGE, aggregator.RATE, aggregator.COUNT) == (0, 1, 2)
        assert (aggregator.MONOTONIC_COUNT, aggregator.COUNTER) == (3, 4)
        assert (aggregator.HISTOGRAM, aggregator.HISTORATE) == (5, 6)
        from checks import AgentCheck

        from datadog_checks.base import AgentCheck as Base

        assert AgentCheck is Base
    finally:
        s.uninstall()
    for name in BUILTIN_NAMES:
        assert name not in sys.modules


def test_submit_metric_skips_non_string_tags(setup):
    import aggregator

    aggregator.submit_metric(
        None, "id", aggregator.GAUGE, "name", -99.0, ["foo", 21, "bar", ["hey"]], "myhost"
    )
    aggregator.submit_metric(None, "id", aggregator.GAUGE, "other", 1, [], "", True)
    sampler = setup.host.aggregator.sampler("id")
    out = sampler.commit(10.0)
    assert out["series"][0]["metric"] == "name"
    assert out["series"][0]["tags"] == ["bar", "foo"]
    assert out["series"][0]["host"] == "myhost"
    assert out["series"][0]["points"] == [[10, -99.0]]


def test_submit_metric_argument_errors(setup):
    assert run("import aggregator; aggregator.submit_metric(None, 21, 0, 'n', 1.0, [], 'h')") == (
        "TypeError: argument 2 must be str, not int"
    )
    assert run(
        "import aggregator; aggregator.submit_metric(None, 'id', 0, 'n', 1.0, 123, 'h')"
    ) == ("TypeError: tags must be a sequence")
    assert run("import aggregator; aggregator.submit_metric(None, 'id', 0, 'n', 'x', [], 'h')") == (
        "TypeError: argument 5 must be real number, not str"
    )
    assert run("import aggregator; aggregator.submit_metric(None, 'id', 0, 'n', 1.0, [])") == (
        "TypeError: function takes at least 7 arguments (6 given)"
    )
    assert run(
        "import aggregator; aggregator.submit_metric(None, 'id', 1.5, 'n', 1.0, [], 'h')"
    ) == ("TypeError: 'float' object cannot be interpreted as an integer")


def test_submit_service_check_and_event(setup):
    import aggregator

    setup.agent.reactor.advance(50)
    aggregator.submit_service_check(None, "id", "svc", 1, ["a", 3], "h", "msg")
    aggregator.submit_event(
        None,
        "id",
        {
            "msg_title": "t",
            "msg_text": "x",
            "timestamp": 7,
            "priority": "low",
            "host": "h",
            "alert_type": "error",
            "aggregation_key": "k",
            "source_type_name": "s",
            "event_type": "e",
            "tags": ["t1", 2],
        },
    )
    aggregator.submit_event(None, "id", {})
    assert run("import aggregator; aggregator.submit_event(None, 'id', 'nope')") == (
        "TypeError: event must be a dict"
    )
    out = setup.host.aggregator.sampler("id").commit(50.0)
    assert out["service_checks"] == [
        {
            "check": "svc",
            "host_name": "h",
            "timestamp": 50,
            "status": 1,
            "message": "msg",
            "tags": ["a"],
        }
    ]
    full, empty = out["events"]
    assert full == {
        "msg_title": "t",
        "msg_text": "x",
        "timestamp": 7,
        "priority": "low",
        "host": "h",
        "alert_type": "error",
        "aggregation_key": "k",
        "source_type_name": "s",
        "event_type": "e",
        "tags": ["t1"],
    }
    assert empty["msg_title"] == ""
    assert empty["tags"] == []
    assert empty["timestamp"] == 50


def test_histogram_bucket_and_platform_event(setup):
    import aggregator

    aggregator.submit_histogram_bucket(None, "id", "h", 42, 1.0, 2.0, 1, "host", ["t"])
    assert (
        run(
            "import aggregator; "
            "aggregator.submit_event_platform_event(None, 'id', 'raw', 'dbm-sample')"
        )
        == "ok"
    )
    assert run(
        "import aggregator; aggregator.submit_event_platform_event(None, 'id', 'raw', 4)"
    ) == ("TypeError: argument 4 must be str, not int")
    out = setup.host.aggregator.sampler("id").commit(1.0)
    assert out["sketches"] == [
        {
            "metric": "h",
            "buckets": [{"count": 42, "lower_bound": 1.0, "upper_bound": 2.0, "monotonic": True}],
            "tags": ["t"],
            "host": "host",
        }
    ]


def test_datadog_agent_identity_and_config(setup):
    import datadog_agent

    agent = setup.agent
    assert datadog_agent.get_hostname() == agent.hostname
    assert datadog_agent.get_version() == agent.version
    assert datadog_agent.get_clustername() == "the-cluster"
    assert datadog_agent.get_config("log_level") == "warning"
    assert datadog_agent.get_config("confd_path") == str(setup.agent.config.get("confd_path"))
    assert datadog_agent.get_config("no_such_key") is None
    assert datadog_agent.tracemalloc_enabled() is False
    assert datadog_agent.headers(http_host="example", ignore_me=1) == {
        "User-Agent": f"Datadog Agent/{agent.version}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "text/html, */*",
        "Host": "example",
    }
    assert run("import datadog_agent; datadog_agent.get_config(1)") == (
        "TypeError: argument 1 must be str, not int"
    )


def test_set_external_tags_validation(setup):
    import datadog_agent

    datadog_agent.set_external_tags(
        [("hostname", {"source_type": ["tag1", 3, "tag2"]}), ("skipped", {})]
    )
    assert setup.host.external_tags == {"hostname": {"source_type": ["tag1", "tag2"]}}
    cases = {
        "'x'": "TypeError: tags must be a list",
        "['x']": "TypeError: external host tags list must contain only tuples",
        "[('h',)]": "TypeError: external host tags tuple must have at least 2 elements",
        "[(1, {})]": "TypeError: hostname is not a valid string",
        "[('h', [])]": "TypeError: second elem of the host tags tuple must be a dict",
        "[('h', {1: []})]": "TypeError: source_type is not a valid string",
        "[('h', {'s': 'x'})]": "TypeError: dict value must be a list of tags",
    }
    for arg, expected in cases.items():
        assert run(f"import datadog_agent; datadog_agent.set_external_tags({arg})") == expected


def test_persistent_cache_is_a_0600_file_that_survives_restarts(checks_env):
    agent = checks_env.agent()
    first = ChecksSetup(agent)
    first.install()
    import datadog_agent

    datadog_agent.write_persistent_cache("hello:abc123_k", "somevalue")
    assert datadog_agent.read_persistent_cache("hello:abc123_k") == "somevalue"
    assert datadog_agent.read_persistent_cache("never") == ""
    first.uninstall()
    path = os.path.join(agent.run_path, "checks_cache", "hello_abc123_k")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = ChecksSetup(checks_env.agent())
    again.install()
    try:
        import datadog_agent as reinstalled

        assert reinstalled.read_persistent_cache("hello:abc123_k") == "somevalue"
    finally:
        again.uninstall()


def test_log_metadata_obfuscation(setup):
    import datadog_agent

    datadog_agent.set_check_metadata("id", "version.raw", "1.0")
    assert setup.host.check_metadata("id") == {"version.raw": "1.0"}
    assert datadog_agent.obfuscate_sql("select * from table where id = 1") == (
        "select * from table where id = ?"
    )
    assert run("import datadog_agent; datadog_agent.obfuscate_sql({})") == (
        "TypeError: argument 1 must be str, not dict"
    )
    datadog_agent.log("foo message", 20)
    datadog_agent.emit_agent_telemetry(
        "test_check", "test_metric", 1.0, "gauge", {"check_name": "x"}
    )
    assert setup.host.telemetry["test_check.test_metric"] == 1


def test_util_subprocess_output(setup):
    import _util

    assert _util.get_subprocess_output(["ls", "/tmp/"])[2] == 0
    out, err, rc = _util.subprocess_output(["sh", "-c", "echo out; echo err >&2; exit 21"], False)
    assert (out, err, rc) == ("out\n", "err\n", 21)
    out, _, _ = _util.get_subprocess_output(
        ["sh", "-c", "echo $FOO$BAZ"], env={"FOO": "BAR", "BAZ": "QUX"}
    )
    assert out == "BARQUX\n"
    cases = {
        "_util.get_subprocess_output()": (
            "TypeError: get_subprocess_output() missing required argument 'command' (pos 1)"
        ),
        "_util.get_subprocess_output('ls')": "TypeError: command args is not a list",
        "_util.get_subprocess_output([])": "TypeError: invalid command: empty list",
        "_util.get_subprocess_output(['ls', 1])": (
            "TypeError: command argument must be valid strings"
        ),
        "_util.get_subprocess_output(['ls'], 1)": (
            "TypeError: bad raise_on_empty argument: should be bool"
        ),
        "_util.get_subprocess_output(['true'], True)": (
            "SubprocessOutputEmptyError: get_subprocess_output expected output but had none."
        ),
        "_util.get_subprocess_output(['no-such-binary-here'])": (
            'Exception: exec: "no-such-binary-here": executable file not found in $PATH'
        ),
    }
    for call, expected in cases.items():
        assert run(f"import _util; {call}") == expected


def test_tagger_containers_kubeutil_util(setup):
    import containers
    import kubeutil
    import tagger
    import util

    assert (tagger.LOW, tagger.ORCHESTRATOR, tagger.HIGH) == (0, 1, 2)
    assert tagger.tag("container_id://abc", tagger.HIGH) == []
    assert tagger.get_tags("container_id://abc", True) == []
    assert run("import tagger; tagger.tag('x', 7)") == "TypeError: Invalid cardinality"
    assert run("import tagger; tagger.tag(1, 0)") == "TypeError: argument 1 must be str, not int"
    assert containers.is_excluded("foo", "bar") is False
    assert run("import containers; containers.is_excluded(1, 'bar')") == (
        "TypeError: argument 1 must be str, not int"
    )
    assert run("import containers; containers.is_excluded('foo', 2)") == (
        "TypeError: argument 2 must be str, not int"
    )
    assert kubeutil.get_connection_info() == {}
    assert util.headers()["Accept"] == "text/html, */*"


def test_container_exclusion_follows_config(checks_env):
    agent = checks_env.agent(extra_config="container_exclude: ['name:^foo$']\n")
    s = ChecksSetup(agent)
    s.install()
    try:
        import containers

        assert containers.is_excluded("foo", "bar") is True
        assert containers.is_excluded("baz", "bar") is False
    finally:
        s.uninstall()


def test_get_config_returns_json_types(setup):
    import datadog_agent

    setup.agent.config.set("custom_key", {"a": [1, 2]})
    assert json.dumps(datadog_agent.get_config("custom_key")) == '{"a": [1, 2]}'
