"""Helpers for the runtime security plugin tests: a fake reactor that kernel source threads
can hand calls to safely, a capturing event sink, and an agent running the plugin."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from support import entry_point, make_agent, plugin_module
from support import start_service as start
from twisted.internet.testing import MemoryReactorClock

import plugins.runtime_security


class ThreadedFakeReactor(MemoryReactorClock):
    """A fake clock reactor whose ``callFromThread`` is a thread-safe queue, drained by
    ``pump`` in the test thread (MemoryReactorClock itself is not thread-safe)."""

    def __init__(self):
        super().__init__()
        self.from_threads: queue.Queue = queue.Queue()

    def callFromThread(self, f, *args, **kwargs):
        self.from_threads.put((f, args, kwargs))

    def drain(self) -> int:
        n = 0
        while True:
            try:
                f, args, kwargs = self.from_threads.get_nowait()
            except queue.Empty:
                return n
            f(*args, **kwargs)
            n += 1

    def pump(self, until: Callable[[], object] | None = None, timeout: float = 5.0, step=0.02):
        """Run queued calls and advance the clock with real time until ``until()`` is true
        (or, without ``until``, for ``timeout`` seconds); returns ``until()``'s value."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            self.advance(0)
            if until is not None:
                value = until()
                if value:
                    return value
            if time.monotonic() >= deadline:
                if until is None:
                    return None
                raise AssertionError("condition not reached in time")
            time.sleep(step)
            self.advance(step)


class CaptureSink:
    name = "capture"
    tracks = frozenset({"runtime"})

    def __init__(self):
        self.events: list[dict] = []

    def send(self, event):
        self.events.append(dict(event.payload))

    def stats(self):
        return {"captured": len(self.events)}

    def by_rule(self, rule_id: str) -> list[dict]:
        return [e for e in self.events if e["agent"]["rule_id"] == rule_id]


def capture_plugin(sink: CaptureSink):
    return entry_point(
        "capture", plugin_module("capture", security_agent_event_sinks=lambda agent: [sink])
    )


def runtime_agent(reactor, tmp_path, config_text: str, sink: CaptureSink, env=None):
    base = "security_agent:\n  disabled_exit_delay: 1s\n"
    return make_agent(
        reactor,
        [entry_point("runtime_security", plugins.runtime_security), capture_plugin(sink)],
        base + config_text,
        tmp_path=tmp_path,
        env=env,
    )


def service_of(agent):
    return plugins.runtime_security._service(agent)


@contextmanager
def running_plugin(
    tmp_path, policies_dir, policy_options: str = ""
) -> Iterator[tuple[object, object, CaptureSink, ThreadedFakeReactor]]:
    """An agent running the plugin on ``policies_dir`` with every kernel source and the self
    test off, so tests feed events straight to the service; yields (agent, service, sink,
    reactor) and stops the agent afterwards. ``policy_options`` adds lines under
    ``policies:`` (each indented four spaces, newline-terminated)."""
    reactor = ThreadedFakeReactor()
    sink = CaptureSink()
    config = (
        "runtime_security_config:\n"
        "  enabled: true\n"
        f"  policies:\n    dir: {policies_dir}\n{policy_options}"
        "  sources: {process: false, file: false, audit: false}\n"
        "  self_test: {enabled: false}\n"
    )
    agent = runtime_agent(reactor, tmp_path, config, sink)
    svc = start(agent)
    reactor.pump(lambda: service_of(agent) is not None and service_of(agent).started)
    try:
        yield agent, service_of(agent), sink, reactor
    finally:
        svc.stopService()
        reactor.pump(timeout=0.1)
