"""Helpers for the checks plugin tests: check files on disk, an agent running the plugin."""

from __future__ import annotations

import textwrap
import time
import uuid
from dataclasses import dataclass, field

from support import FakeReactor, entry_point, make_agent, plugin_module

import plugins.checks
from host import PluginSpec

CHECK_RUNNER_WAIT = 10.0


@dataclass
class MetricsSink:
    name: str = "test-metrics"
    tracks: frozenset = frozenset({"metrics"})
    events: list = field(default_factory=list)

    def send(self, event):
        self.events.append(event.payload)

    def stats(self):
        return {"received": len(self.events)}

    def of_kind(self, kind):
        return [item for p in self.events if p["kind"] == kind for item in p[kind]]


class ChecksEnv:
    """A conf.d and a checks.d under tmp_path, and check names unique to the test."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.confd = tmp_path / "conf.d"
        self.checksd = tmp_path / "checks.d"
        self.confd.mkdir()
        self.checksd.mkdir()
        self.names = []

    def name(self, stem="chk"):
        name = f"{stem}_{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        return name

    def write_check(self, name, code):
        (self.checksd / f"{name}.py").write_text(textwrap.dedent(code))

    def write_conf(self, name, text, filename="conf.yaml"):
        directory = self.confd / f"{name}.d"
        directory.mkdir(exist_ok=True)
        path = directory / filename
        path.write_text(textwrap.dedent(text))
        return path

    def config_text(self, extra=""):
        return f"confd_path: {self.confd}\nadditional_checksd: {self.checksd}\n" + extra

    def agent(self, reactor=None, extra_config="", sink=None, extra_eps=()):
        reactor = reactor or FakeReactor()
        eps = [entry_point("checks", plugins.checks), *extra_eps]
        if sink is not None:
            eps.append(
                entry_point(
                    "metrics_sink",
                    plugin_module("metrics_sink", security_agent_event_sinks=lambda agent: [sink]),
                )
            )
        # The host exits when no security component is enabled: give it a trivial one.
        eps.append(
            entry_point(
                "guard",
                plugin_module(
                    "guard",
                    security_agent_plugin_spec=lambda agent: PluginSpec(security_component=True),
                    security_agent_run=lambda agent: None,
                ),
            )
        )
        return make_agent(reactor, eps, self.config_text(extra_config), tmp_path=self.tmp_path)


def pump(reactor, condition, step=0.0, timeout=CHECK_RUNNER_WAIT):
    """Turn the fake reactor (moving its clock ``step`` seconds a turn) until ``condition()``
    holds; runner threads report through ``callFromThread``, which the fake reactor queues as
    zero-delay calls."""
    deadline = time.monotonic() + timeout
    while not condition():
        reactor.advance(step)
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached while pumping the reactor")
        time.sleep(0.005)
    reactor.advance(0)
