"""Helpers to drive the real daemon in a subprocess (fixtures are in conftest.py).

Plugins for these tests are real distributions: a module plus a ``.dist-info`` directory
with ``entry_points.txt`` on ``PYTHONPATH``, which ``importlib.metadata`` discovers exactly
as it does a pip-installed wheel.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BIN = Path(sys.executable).parent

AGENT_CONFIG = """\
run_path: run
security_agent:
  cmd_port: 0
  expvar_port: 0
"""
"""The head of a daemon config: ports 0, so that tests running together never collide. More
``security_agent`` keys may follow directly."""

E2E_PLUGIN = """
from pathlib import Path
from host import PluginSpec, hookimpl

@hookimpl
def security_agent_config_schema(schema):
    schema.declare("e2e.interval", 0.5)
    schema.declare("e2e.marker_dir", "", path=True)
    schema.declare("e2e.security", True)

@hookimpl
def security_agent_plugin_spec(agent):
    return PluginSpec(interval=agent.config.get_float("e2e.interval"),
                      security_component=agent.config.get_bool("e2e.security"))

def _mark(agent, what):
    d = Path(agent.config.get_str("e2e.marker_dir"))
    with open(d / "events", "a") as f:
        f.write(what + "\\n")

@hookimpl
def security_agent_run(agent):
    _mark(agent, "run")

@hookimpl
def security_agent_stop(agent):
    _mark(agent, "stop")
"""


# A sink that writes every event payload of ``track`` as one JSON line to ``e2e_sink.path``,
# so a test can read what a plugin emitted. Format with ``track=...``.
FILE_SINK_PLUGIN = """
import json
from host import hookimpl

class FileSink:
    name = "e2e-{track}-file"
    tracks = frozenset({{"{track}"}})

    def __init__(self, path):
        self.path = path
        self.count = 0

    def send(self, event):
        with open(self.path, "a") as f:
            f.write(json.dumps(dict(event.payload)) + "\\n")
        self.count += 1

    def stats(self):
        return {{"written": self.count}}

@hookimpl
def security_agent_config_schema(schema):
    schema.declare("e2e_sink.path", "", path=True)

@hookimpl
def security_agent_event_sinks(agent):
    return [FileSink(agent.config.get_str("e2e_sink.path"))]
"""


def make_distribution(site: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[security_agent]\n{ep_name} = {module}\n")


class Daemon:
    """A running agent process whose combined output is read line by line."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Return the first output line containing ``text`` (already seen or upcoming)."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not seen in output:\n" + "\n".join(self.lines))

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout=timeout)
        while True:  # drain what is left
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed next to {sys.executable}"
    return found


def run_cli(
    *argv: str, env: dict[str, str], cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``security-agent *argv`` to the end, output captured as text."""
    return subprocess.run(
        [tool("security-agent"), *argv],
        env=env,
        cwd=cwd,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a test that needs to know it before starting)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` every 50 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or 'a condition'}"
        time.sleep(0.05)
