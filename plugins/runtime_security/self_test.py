"""The self-test: a temporary rule on a file a child process creates must fire in time.

As Datadog's ``open`` self-test: the rule is ``open.file.path == "<file>" && open.flags &
O_CREAT > 0`` and the file is created by ``touch`` run as a child (the file source ignores the
agent's own pid). The rule is a probe on the engine, not part of the loaded policies, so it
never produces a security event.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred

from plugins.runtime_security.engine import RuleEngine
from plugins.secl import compile_expression

TIMEOUT = 2.0
TEST_NAME = "open"


@dataclass
class SelfTestResult:
    last_timestamp: float | None = None
    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error: str = ""
    running: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.succeeded) and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "LastTimestamp": self.last_timestamp,
            "Success": list(self.succeeded),
            "Fails": list(self.failed),
            "Error": self.error,
        }


def touch_in_child(path: str) -> None:
    """Create ``path`` from a child process (blocking; run in a worker)."""
    touch = shutil.which("touch")
    argv = [touch, path] if touch else [sys.executable, "-c", f"open({path!r}, 'a').close()"]
    subprocess.run(argv, check=True, timeout=10, stdin=subprocess.DEVNULL)


class SelfTest:
    def __init__(self, reactor: Any, workers: Any, engine: RuleEngine, directory: str) -> None:
        self.reactor = reactor
        self.workers = workers
        self.engine = engine
        self.directory = directory
        self.result = SelfTestResult()

    def run(self, timeout: float = TIMEOUT) -> Deferred[SelfTestResult]:
        """Run the test; the Deferred fires with the result (never errbacks)."""
        done: Deferred[SelfTestResult] = Deferred()
        self.result.running = True
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            self._finish(done, None, f"cannot create {self.directory}: {exc.strerror}", None)
            return done
        path = os.path.join(self.directory, f"self-test-{secrets.token_hex(6)}")
        rule = compile_expression(
            f'open.file.path == "{path}" && open.flags & O_CREAT > 0', rule_id="self_test_open"
        )

        def probe(event: Mapping[str, Any]) -> None:
            if event.get("type") == "open" and rule.matches(event):
                self._finish(done, probe, "", path)

        self.engine.probes.append(probe)
        timer = self.reactor.callLater(
            timeout,
            self._finish,
            done,
            probe,
            f"the self-test rule did not fire within {timeout:g}s",
            path,
        )

        def touched_failed(failure: Any) -> None:
            self._finish(done, probe, f"the test child failed: {failure.getErrorMessage()}", path)

        def cancel_timer(result: SelfTestResult) -> SelfTestResult:
            if timer.active():
                timer.cancel()
            return result

        done.addBoth(cancel_timer)
        self.workers.defer(touch_in_child, path).addErrback(touched_failed)
        return done

    def fail(self, error: str) -> None:
        """Record a failure that happened before the test could run."""
        self.result = SelfTestResult(last_timestamp=time.time(), failed=[TEST_NAME], error=error)

    def _finish(
        self, done: Deferred[SelfTestResult], probe: Any, error: str, path: str | None
    ) -> None:
        if done.called:
            return
        if probe is not None and probe in self.engine.probes:
            self.engine.probes.remove(probe)
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
        result = SelfTestResult(last_timestamp=time.time())
        if error:
            result.failed, result.error = [TEST_NAME], error
        else:
            result.succeeded = [TEST_NAME]
        self.result = result
        done.callback(result)
