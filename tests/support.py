"""Test helpers shared by several test modules: fake entry points and plugin modules."""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class FakeDist:
    name: str
    version: str

    @property
    def metadata(self) -> dict[str, str]:
        return {"Name": self.name}


@dataclass
class FakeEntryPoint:
    """An entry point whose ``load()`` returns ``target`` (or raises it if it is an exception)."""

    name: str
    target: Any
    dist: FakeDist | None = None

    @property
    def value(self) -> str:
        return f"fake_{self.name}"

    def load(self) -> Any:
        if isinstance(self.target, BaseException):
            raise self.target
        if callable(self.target) and not isinstance(self.target, types.ModuleType):
            return self.target()
        return self.target


def plugin_module(name: str, **hooks: Callable[..., Any]) -> types.ModuleType:
    """A module object carrying ``@hookimpl`` functions, like a real plugin module."""
    from host import hookimpl

    mod = types.ModuleType(name)
    for hook_name, func in hooks.items():
        func.__name__ = hook_name
        setattr(mod, hook_name, hookimpl(func))
    return mod


def entry_point(name: str, target: Any, dist: str = "fake-dist", version: str = "1.2.3"):
    return FakeEntryPoint(name, target, FakeDist(dist, version))


class FakeReactor:
    """A MemoryReactorClock that also accepts callFromThread (as a zero-delay call)."""

    def __new__(cls):
        from twisted.internet.testing import MemoryReactorClock

        class _R(MemoryReactorClock):
            def callFromThread(self, f, *args, **kwargs):
                self.callLater(0, f, *args, **kwargs)

        return _R()


class InlineWorkers:
    """A worker pool that runs 'blocking' work inline, for deterministic tests."""

    def __init__(self):
        self.started = False
        self.size = 1
        self.calls = 0

    def start(self):
        self.started = True

    def defer(self, f, *args, **kwargs):
        from twisted.internet import defer

        self.calls += 1
        return defer.maybeDeferred(f, *args, **kwargs)

    def stats(self):
        return {"size": self.size, "busy": 0, "queued": 0}

    def stop(self, timeout):
        from twisted.internet import defer

        self.started = False
        return defer.succeed(True)


def make_agent(reactor, eps, config_text="", tmp_path=None, env=None, **options):
    """Build an Agent on a fake reactor from fake entry points and a config text."""
    from host.bootstrap import AgentOptions, build_agent

    assert tmp_path is not None
    cfg = tmp_path / "security-agent.yaml"
    base = f"run_path: {tmp_path / 'run'}\n"
    cfg.write_text(base + config_text)
    agent = build_agent(
        AgentOptions(cfgpaths=[str(cfg)], **options),
        reactor,
        entry_points=lambda: list(eps),
        env=env or {},
    )
    workers = InlineWorkers()
    agent.workers = workers
    agent.scheduler.workers = workers
    return agent
