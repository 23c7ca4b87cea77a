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


NOBODY = 65534


def run_in_child_as_nobody(directory, action) -> str:
    """Run ``action`` in a forked child, in ``directory``, as uid/gid 65534.

    The tests run as root, for whom file modes grant everything, so a permission-denied path
    needs another user. Returns ``"no error"`` when the action returns ``None``, the string it
    returns, or ``"<ExceptionType>: <message>"``; ``"SKIP: ..."`` if the switch is impossible.
    """
    import os

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one line through the pipe, never return into pytest
        try:
            os.close(read_fd)
            try:
                # chdir first, as root: the action opens relative paths, so nobody needs no
                # access to tmp_path's 0700 parents, only to `directory` itself.
                os.chdir(directory)
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(NOBODY)
                    os.setuid(NOBODY)
            except OSError as error:
                result = f"SKIP: cannot switch to uid {NOBODY}: {error}"
            else:
                try:
                    value = action()
                    result = "no error" if value is None else str(value)
                except BaseException as error:
                    result = f"{type(error).__name__}: {error}"
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(result.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        output = pipe.read().decode()
    os.waitpid(pid, 0)
    return output


def start_service(agent):
    """Start ``agent``'s AgentService as the daemon does, without signal handlers; returns it."""
    from host.lifecycle import AgentService

    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    return service
