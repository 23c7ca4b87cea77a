"""A small sampling CPU profiler, for when the profiler extra (``ddtrace``) is not installed.

Each capture samples the stack of every thread (``sys._current_frames()``) about 100 times a
second for ``cpu_duration`` seconds, in a daemon thread of its own so the reactor never waits
for it, and writes the counts in the collapsed-stack format ``flamegraph.pl``, speedscope and
inferno read: one line per distinct stack, frames root first separated by ``;``, the thread
name as the root frame, then a space and the number of samples::

    MainThread;lifecycle.py:AgentService._start;scheduler.py:Job.fire 12

Files are named ``cpu-<UTC start time>-<sequence>.folded`` so that name order is time order,
are written atomically with mode 0600 and only the newest ``max_files`` are kept. The
schedule (when a capture starts) is the caller's: the plugin runs :meth:`capture` as a
scheduler job every ``period``, on the agent's clock.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from twisted.internet.defer import Deferred

SAMPLE_RATE_HZ = 100.0
FILE_PREFIX = "cpu-"
FILE_SUFFIX = ".folded"


def _label(text: str) -> str:
    # ';' separates frames and the last space separates the count.
    return text.replace(";", "_").replace(" ", "_") or "?"


def fold_stack(thread_name: str, frame: FrameType | None) -> str:
    """One collapsed stack: the thread, then each frame from the outermost in."""
    frames: list[str] = []
    while frame is not None:
        code = frame.f_code
        frames.append(_label(f"{os.path.basename(code.co_filename)}:{code.co_qualname}"))
        frame = frame.f_back
    frames.append(_label(thread_name))
    return ";".join(reversed(frames))


class SamplingProfiler:
    """Captures CPU profiles into ``directory``.

    ``reactor`` provides ``seconds()`` (a capture's timestamp) and ``callFromThread`` (to
    report back); ``sleep`` and ``frames`` are injectable so tests get exact sample counts.
    """

    def __init__(
        self,
        directory: str,
        reactor: Any,
        *,
        cpu_duration: float,
        max_files: int,
        rate_hz: float = SAMPLE_RATE_HZ,
        sleep: Callable[[float], None] = time.sleep,
        frames: Callable[[], dict[int, FrameType]] = sys._current_frames,
    ) -> None:
        self.directory = directory
        self._reactor = reactor
        self.cpu_duration = cpu_duration
        self.max_files = max_files
        self.rate_hz = rate_hz
        self._sleep = sleep
        self._frames = frames
        self._stopping = threading.Event()
        self._sequence = 0
        self.thread: threading.Thread | None = None
        self.captures = 0
        self.removed = 0
        self.last_file: str | None = None

    @property
    def samples_per_capture(self) -> int:
        return max(1, round(self.cpu_duration * self.rate_hz))

    def capture(self) -> Deferred[str]:
        """Start one capture; the Deferred fires in the reactor thread with the file written."""
        result: Deferred[str] = Deferred()
        if self._stopping.is_set():
            result.errback(RuntimeError("the profiler is stopped"))
            return result
        self._sequence += 1
        started = datetime.fromtimestamp(self._reactor.seconds(), UTC)
        name = f"{FILE_PREFIX}{started:%Y%m%dT%H%M%SZ}-{self._sequence:04d}{FILE_SUFFIX}"
        path = os.path.join(self.directory, name)

        def work() -> None:
            try:
                self._write(path, self._sample())
                self._prune()
            except BaseException as error:
                self._reactor.callFromThread(result.errback, error)
            else:
                self._reactor.callFromThread(self._done, result, path)

        self.thread = threading.Thread(target=work, name="security-agent-profiler", daemon=True)
        self.thread.start()
        return result

    def _done(self, result: Deferred[str], path: str) -> None:
        self.captures += 1
        self.last_file = path
        result.callback(path)

    def _sample(self) -> Counter[str]:
        me = threading.get_ident()
        names: dict[int, str] = {}
        stacks: Counter[str] = Counter()
        interval = 1.0 / self.rate_hz
        for _ in range(self.samples_per_capture):
            if self._stopping.is_set():
                break
            for ident, frame in self._frames().items():
                if ident == me:
                    continue
                if ident not in names:
                    names = {t.ident: t.name for t in threading.enumerate() if t.ident}
                stacks[fold_stack(names.get(ident, f"thread-{ident}"), frame)] += 1
            self._sleep(interval)
        return stacks

    def _write(self, path: str, stacks: Counter[str]) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        text = "".join(f"{stack} {count}\n" for stack, count in sorted(stacks.items()))
        temporary = path + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, path)

    def _prune(self) -> None:
        profiles = self.files()
        for path in profiles[: max(0, len(profiles) - self.max_files)]:
            os.remove(path)
            self.removed += 1

    def stop(self) -> None:
        """End the current capture early (it still writes what it sampled); no new ones."""
        self._stopping.set()

    def files(self) -> list[str]:
        """The profile files in the directory, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(
            os.path.join(self.directory, n)
            for n in names
            if n.startswith(FILE_PREFIX) and n.endswith(FILE_SUFFIX)
        )
