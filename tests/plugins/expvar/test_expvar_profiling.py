"""Internal profiling: the URL and settings the Go agent derives, the profiler extra when it is
installed, and our own sampling profiler on a fake clock when it is not."""

from __future__ import annotations

import json
import os
import re
import sys
import types
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from support import FakeReactor, entry_point, make_agent, plugin_module, start_service
from twisted.logger import formatEvent

import plugins.expvar
from host import PluginSpec
from host.bootstrap import StartupError
from host.status import collect_status
from plugins.expvar import expvar_plugin, internal_profiling
from plugins.expvar.profiling_settings import ProfilingSettings, profiling_url
from plugins.expvar.sampler import SamplingProfiler, fold_stack


def security_plugin():
    return plugin_module(
        "fake", security_agent_plugin_spec=lambda agent: PluginSpec(security_component=True)
    )


def build(tmp_path, config="", env=None, reactor=None):
    return make_agent(
        reactor or FakeReactor(),
        [entry_point("expvar", plugins.expvar), entry_point("fake", security_plugin())],
        config if "expvar_port" in config else "security_agent.expvar_port: 0\n" + config,
        tmp_path=tmp_path,
        env=env,
    )


@pytest.fixture
def no_extra(monkeypatch):
    monkeypatch.setattr(internal_profiling, "load_profiler_extra", lambda environment: None)


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "profile_dd_url", "trace_agent_url", "expected"),
    [
        ("datadoghq.com", "", "", "https://intake.profile.datadoghq.com/v1/input"),
        ("datadoghq.eu", "", "", "https://intake.profile.datadoghq.eu/v1/input"),
        ("datadoghq.eu", "https://proxy:8443/prof", "", "https://proxy:8443/prof"),
        ("datadoghq.eu", "", "localhost:8126", "http://localhost:8126/profiling/v1/input"),
        # TRACE_AGENT_URL wins over profile_dd_url, as in setupInternalProfiling.
        ("x", "https://proxy/prof", "10.0.0.1:8126", "http://10.0.0.1:8126/profiling/v1/input"),
    ],
)
def test_profiling_url_table(site, profile_dd_url, trace_agent_url, expected):
    assert profiling_url(site, profile_dd_url, trace_agent_url) == expected


def test_defaults(tmp_path):
    agent = build(tmp_path)
    settings = expvar_plugin(agent).profiling_settings
    assert settings == ProfilingSettings(
        enabled=False,
        url="https://intake.profile.datadoghq.com/v1/input",
        site="datadoghq.com",
        trace_agent_url="",
        api_key="",
        env="",
        period=300.0,
        cpu_duration=60.0,
        tags=(f"version:{agent.version}",),
        version=agent.version,
        max_files=12,
        delta_profiles=True,
        unix_socket="",
    )
    assert settings.service == "security-agent"
    config = agent.config
    assert config.get("security_agent.expvar_port") == 0
    assert config.get("telemetry.enabled") is False
    for key, value in {
        "mutex_profile_fraction": 0,
        "block_profile_rate": 0,
        "enable_goroutine_stacktraces": False,
        "enable_block_profiling": False,
        "enable_mutex_profiling": False,
        "extra_tags": [],
        "profile_dd_url": "",
        "site": "datadoghq.com",
    }.items():
        assert config.get(f"security_agent.internal_profiling.{key}") == value


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"DD_SECURITY_AGENT_INTERNAL_PROFILING_ENABLED": "true"}, "enabled", True),
        (
            {"DD_SECURITY_AGENT_INTERNAL_PROFILING_SITE": "datadoghq.eu", "DD_SITE": "us5"},
            "url",
            "https://intake.profile.datadoghq.eu/v1/input",
        ),
        (
            {"DD_SITE": "us3.datadoghq.com"},
            "url",
            "https://intake.profile.us3.datadoghq.com/v1/input",
        ),
        ({"DD_SECURITY_AGENT_INTERNAL_PROFILING_DD_URL": "https://a/p"}, "url", "https://a/p"),
        ({"DD_APM_INTERNAL_PROFILING_DD_URL": "https://b/p"}, "url", "https://b/p"),
        (
            {"DD_SECURITY_AGENT_INTERNAL_PROFILING_API_KEY": "k1", "DD_API_KEY": "k2"},
            "api_key",
            "k1",
        ),
        ({"DD_API_KEY": "k2"}, "api_key", "k2"),
        ({"DD_ENV": "prod"}, "env", "prod"),
        (
            {"DD_SECURITY_AGENT_INTERNAL_PROFILING_ENV": "staging", "DD_ENV": "prod"},
            "env",
            "staging",
        ),
        ({"DD_SECURITY_AGENT_INTERNAL_PROFILING_PERIOD": "2m"}, "period", 120.0),
    ],
)
def test_environment_aliases(tmp_path, env, field, expected):
    agent = build(tmp_path, env=env)
    assert getattr(expvar_plugin(agent).profiling_settings, field) == expected


def test_trace_agent_url_comes_from_the_process_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACE_AGENT_URL", "127.0.0.1:8126")
    agent = build(
        tmp_path, "security_agent:\n  internal_profiling:\n    profile_dd_url: https://x\n"
    )
    assert expvar_plugin(agent).profiling_settings.url == "http://127.0.0.1:8126/profiling/v1/input"


def test_extra_tags_get_the_agent_version(tmp_path):
    agent = build(
        tmp_path,
        "security_agent:\n  internal_profiling:\n    extra_tags: [team:cws, 'region:eu-1', bare]\n",
    )
    settings = expvar_plugin(agent).profiling_settings
    assert settings.tags == ("team:cws", "region:eu-1", "bare", f"version:{agent.version}")
    assert settings.tag_map() == {
        "team": "cws",
        "region": "eu-1",
        "bare": "",
        "version": agent.version,
    }


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (
            "    cpu_duration: 10m\n",
            "security_agent.internal_profiling.cpu_duration: must be positive and at most the "
            "period (300s), got 600s",
        ),
        ("    period: 0s\n", "security_agent.internal_profiling.period: must be positive, got 0s"),
        (
            "    local_max_files: 0\n",
            "security_agent.internal_profiling.local_max_files: must be at least 1, got 0",
        ),
    ],
)
def test_bad_profiling_values_stop_the_start_naming_file_and_line(tmp_path, yaml, message):
    with pytest.raises(StartupError) as caught:
        build(tmp_path, "security_agent:\n  internal_profiling:\n" + yaml)
    assert str(caught.value) == f"plugin expvar: {tmp_path / 'security-agent.yaml'}:5: {message}"


def test_bad_port_stops_the_start(tmp_path):
    with pytest.raises(StartupError) as caught:
        build(tmp_path, "security_agent:\n  expvar_port: 70000\n")
    assert str(caught.value).endswith(
        "security_agent.expvar_port: expected a port number between 0 and 65535, got 70000"
    )


# --- the local sampling profiler ----------------------------------------------------------------

PROFILING = (
    "security_agent:\n"
    "  internal_profiling:\n"
    "    enabled: true\n"
    "    period: 10s\n"
    "    cpu_duration: 50ms\n"
    "    local_max_files: 3\n"
)


def start(agent):
    service = start_service(agent)
    assert service.ready
    return service


def finish_capture(reactor, profiler):
    """Let the capture thread end, then deliver its result on the fake reactor."""
    profiler.sampler.thread.join(timeout=30)
    assert not profiler.sampler.thread.is_alive()
    reactor.advance(0)


def test_profiles_are_written_on_the_clock_schedule_and_bounded(tmp_path, no_extra, log_events):
    reactor = FakeReactor()
    reactor.advance(1_800_000_000)  # 2027-01-15T08:00:00Z
    agent = build(tmp_path, PROFILING, reactor=reactor)
    start(agent)
    profiling = expvar_plugin(agent).profiling
    directory = tmp_path / "run" / "profiles"
    assert profiling.directory == str(directory)
    assert profiling.mode == "local"
    lines = [formatEvent(e) for e in log_events if e.get("log_namespace") == "expvar.profiling"]
    assert lines == [
        "Internal profiling: the profiler extra (ddtrace) is not installed, "
        f"so CPU profiles go to {directory}"
    ]
    job = agent.scheduler.jobs["expvar.internal_profiling"]
    assert job.interval == 10.0
    written = []
    for turn in range(5):
        # Nothing starts before the turn is due; each turn (at most a tenth of the period
        # of jitter late) starts exactly one capture.
        assert job.next_run is not None
        reactor.advance(job.next_run - reactor.seconds())
        finish_capture(reactor, profiling)
        assert profiling.sampler.captures == turn + 1
        written.append(profiling.sampler.last_file)
    names = [os.path.basename(p) for p in written]
    for name in names:
        assert re.fullmatch(r"cpu-2027011\dT\d{6}Z-000[1-5]\.folded", name), name
    assert sorted(os.listdir(directory)) == names[-3:]  # only the newest 3 are kept
    assert profiling.sampler.removed == 2
    for name in names[-3:]:
        path = directory / name
        assert (path.stat().st_mode & 0o777) == 0o600
        content = path.read_text()
        counts = {}
        for line in content.splitlines():
            stack, _, count = line.rpartition(" ")
            assert stack, line
            assert " " not in stack, line
            assert count.isdigit(), line
            root = stack.split(";")[0]
            counts[root] = counts.get(root, 0) + int(count)
        # 50 ms at 100 Hz: every sample saw the main thread (waiting in join()).
        assert counts["MainThread"] == 5
        assert "security-agent-profiler" not in counts  # the sampler leaves itself out
    # Only the one line about where the profiles go, whatever the number of captures.
    assert len([e for e in log_events if e.get("log_namespace") == "expvar.profiling"]) == 1
    status = collect_status(agent)["sections"]["expvar"]
    assert status["data"]["internal_profiling"]["captures"] == 5
    assert status["data"]["internal_profiling"]["mode"] == "local"
    assert status["text"].endswith(f"Internal profiling: CPU profiles in {directory}")


def test_stop_ends_the_schedule_and_a_capture_in_progress(tmp_path, no_extra):
    reactor = FakeReactor()
    agent = build(
        tmp_path,
        PROFILING.replace("cpu_duration: 50ms", "cpu_duration: 10s"),  # 1000 samples
        reactor=reactor,
    )
    service = start(agent)
    profiling = expvar_plugin(agent).profiling
    job = agent.scheduler.jobs["expvar.internal_profiling"]
    reactor.advance(job.next_run - reactor.seconds())
    assert profiling.sampler.thread.is_alive()
    stopped = service.stopService()
    finish_capture(reactor, profiling)  # stop made the capture end early
    reactor.advance(1)
    assert stopped.called
    assert "expvar.internal_profiling" not in agent.scheduler.jobs
    [profile] = os.listdir(tmp_path / "run" / "profiles")
    assert (tmp_path / "run" / "profiles" / profile).read_text().startswith("MainThread")
    reactor.advance(100)
    assert profiling.sampler.captures == 1
    assert profiling.sampler.thread.is_alive() is False


def test_disabled_by_default_writes_nothing(tmp_path, no_extra):
    reactor = FakeReactor()
    agent = build(tmp_path, reactor=reactor)
    start(agent)
    reactor.advance(1000)
    assert expvar_plugin(agent).profiling is None
    assert "expvar.internal_profiling" not in agent.scheduler.jobs
    assert not (tmp_path / "run" / "profiles").exists()


def test_fold_stack_and_sampling_with_injected_frames(tmp_path):
    def inner():
        return sys._getframe()

    frame = inner()
    folded = fold_stack("Worker 1", frame)
    parts = folded.split(";")
    assert parts[0] == "Worker_1"
    here = "test_expvar_profiling.py:test_fold_stack_and_sampling_with_injected_frames"
    assert parts[-1] == here + ".<locals>.inner"
    assert parts[-2] == here

    reactor = FakeReactor()
    sampler = SamplingProfiler(
        str(tmp_path / "p"),
        reactor,
        cpu_duration=0.2,
        max_files=2,
        sleep=lambda _s: None,
        frames=lambda: {123456: frame},
    )
    d = sampler.capture()
    sampler.thread.join(timeout=30)
    reactor.advance(0)
    path = d.result
    stamp = datetime.fromtimestamp(0, UTC).strftime("%Y%m%dT%H%M%SZ")
    assert os.path.basename(path) == f"cpu-{stamp}-0001.folded"
    expected_root = "thread-123456;" + ";".join(parts[1:])
    with open(path) as f:
        assert f.read() == f"{expected_root} 20\n"


# --- the profiler extra -------------------------------------------------------------------------


class FakeProfiler:
    instances: ClassVar[list[FakeProfiler]] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []
        FakeProfiler.instances.append(self)

    def start(self):
        self.calls.append("start")

    def stop(self, flush=True):
        self.calls.append(("stop", flush))


def test_the_profiler_extra_gets_the_computed_settings(tmp_path, monkeypatch, log_events):
    module = types.SimpleNamespace(Profiler=FakeProfiler)
    environments = []

    def load(environment):
        environments.append(environment)
        return module

    monkeypatch.setattr(internal_profiling, "load_profiler_extra", load)
    FakeProfiler.instances.clear()
    agent = build(
        tmp_path,
        "security_agent:\n  internal_profiling:\n    enabled: true\n    extra_tags: [team:cws]\n",
        env={"DD_SITE": "datadoghq.eu", "DD_API_KEY": "abc", "DD_ENV": "prod"},
    )
    service = start(agent)
    [profiler] = FakeProfiler.instances
    assert profiler.kwargs == {
        "service": "security-agent",
        "version": agent.version,
        "tags": {"team": "cws", "version": agent.version},
        "env": "prod",
    }
    assert environments == [
        {"DD_PROFILING_AGENTLESS": "true", "DD_SITE": "datadoghq.eu", "DD_API_KEY": "abc"}
    ]
    assert profiler.calls == ["start"]
    assert "expvar.internal_profiling" not in agent.scheduler.jobs
    assert not (tmp_path / "run" / "profiles").exists()
    lines = [formatEvent(e) for e in log_events if e.get("log_namespace") == "expvar.profiling"]
    assert lines == [
        "Internal profiling: sending profiles to "
        "https://intake.profile.datadoghq.eu/v1/input as security-agent"
    ]
    service.stopService()
    assert profiler.calls == ["start", ("stop", False)]


def test_a_failing_profiler_extra_fails_the_plugin_start(tmp_path, monkeypatch):
    def broken(**kwargs):
        raise TypeError("unexpected keyword argument 'url'")

    monkeypatch.setattr(
        internal_profiling,
        "load_profiler_extra",
        lambda environment: types.SimpleNamespace(Profiler=broken),
    )
    agent = build(tmp_path, "security_agent:\n  internal_profiling:\n    enabled: true\n")
    start(agent)
    assert agent.runtimes["expvar"].start_error == ("TypeError: unexpected keyword argument 'url'")


# --- flare and encoding -------------------------------------------------------------------------


def test_flare_gets_the_whole_debug_vars_page(tmp_path):
    from host.flare_files import collect_flare_files

    agent = build(tmp_path)
    agent.publish("answer", lambda: {"value": 42})
    agent.publish("not_a_number", lambda: float("nan"))
    flare = collect_flare_files(agent)
    assert flare.errors == []
    page = json.loads(flare.files["expvar/debug_vars.json"])
    assert list(page)[:6] == ["cmdline", "memstats", "scheduler", "events", "workers", "expvar"]
    assert page["answer"] == {"value": 42}
    # NaN is not JSON: the variable shows why instead of making the whole page unparsable.
    # (the wording after this prefix differs between Python versions)
    [(key, message)] = page["not_a_number"].items()
    assert key == "error"
    assert message.startswith("ValueError: Out of range float values are not JSON compliant")


def test_the_extra_goes_through_the_local_trace_agent_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACE_AGENT_URL", "localhost:8126")
    environments = []

    def load(environment):
        environments.append(environment)
        return types.SimpleNamespace(Profiler=FakeProfiler)

    monkeypatch.setattr(internal_profiling, "load_profiler_extra", load)
    start(build(tmp_path, "security_agent:\n  internal_profiling:\n    enabled: true\n"))
    assert environments == [{"DD_TRACE_AGENT_URL": "http://localhost:8126"}]


def test_profile_dd_url_the_extra_cannot_honour_is_reported(tmp_path, monkeypatch, log_events):
    monkeypatch.setattr(
        internal_profiling,
        "load_profiler_extra",
        lambda environment: types.SimpleNamespace(Profiler=FakeProfiler),
    )
    start(
        build(
            tmp_path,
            "security_agent:\n  internal_profiling:\n    enabled: true\n"
            "    profile_dd_url: https://proxy.example/prof\n",
        )
    )
    lines = [formatEvent(e) for e in log_events if e.get("log_namespace") == "expvar.profiling"]
    assert lines == [
        "Internal profiling: the profiler extra cannot send to profile_dd_url "
        "https://proxy.example/prof; profiles go to https://intake.profile.datadoghq.com/v1/input",
        "Internal profiling: sending profiles to "
        "https://intake.profile.datadoghq.com/v1/input as security-agent",
    ]


@pytest.fixture
def fake_ddtrace(tmp_path, monkeypatch):
    """A ``ddtrace`` package on sys.path that records the environment it was imported in."""
    package = tmp_path / "site" / "ddtrace"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "profiling.py").write_text(
        "import os\nSEEN = {k: os.environ.get(k) for k in ('DD_SITE', 'DD_PROFILING_AGENTLESS')}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in ("DD_SITE", "DD_PROFILING_AGENTLESS"):
        # setenv first so that monkeypatch restores the variable, even one set by the code
        # under test, to what it was before the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    yield
    sys.modules.pop("ddtrace.profiling", None)
    sys.modules.pop("ddtrace", None)


def test_load_profiler_extra_sets_the_environment_before_import(fake_ddtrace, monkeypatch):
    monkeypatch.setenv("DD_SITE", "operator.example")  # the operator's own setting wins
    module = internal_profiling.load_profiler_extra(
        {"DD_SITE": "datadoghq.eu", "DD_PROFILING_AGENTLESS": "true"}
    )
    assert module.SEEN == {"DD_SITE": "operator.example", "DD_PROFILING_AGENTLESS": "true"}


def test_load_profiler_extra_without_the_extra(monkeypatch):
    monkeypatch.setattr(internal_profiling.importlib.util, "find_spec", lambda name: None)
    assert internal_profiling.load_profiler_extra({"DD_SITE": "x"}) is None
