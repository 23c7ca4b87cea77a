"""What ``/debug/vars`` shows: built-in variables plus every one plugins publish.

Built-ins, in order: ``cmdline`` (the process's full command line), ``memstats`` (see
:mod:`plugins.expvar.memstats`), ``scheduler`` (per scheduled job: runs, errors, skipped turns,
overruns, durations), ``events`` (``agent.events.stats()``), ``workers`` (the blocking-work
pool) and ``expvar`` (this server's own request counts). Then each ``agent.publish``-ed
variable under its name. A getter that raises, or returns something JSON cannot encode, shows
``{"error": "<Type>: <message>"}`` under its name instead of breaking the whole page; a
published name equal to a built-in one is listed in ``expvar.shadowed`` (Go's expvar panics on
a duplicate; the host already refuses duplicates among published names).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plugins.expvar.memstats import memstats

if TYPE_CHECKING:
    from host.agent import Agent

BUILTIN_NAMES = ("cmdline", "memstats", "scheduler", "events", "workers", "expvar")

_JOB_FIELDS = (
    "interval",
    "running",
    "runs",
    "errors",
    "skipped",
    "overruns",
    "last_start",
    "last_duration",
    "average_duration",
    "last_error",
)


class RequestCounts:
    """Requests this server answered, by path and status code (for the ``expvar`` var)."""

    def __init__(self) -> None:
        self.by_code: Counter[str] = Counter()
        self.by_path: Counter[str] = Counter()

    def count(self, path: str, code: int) -> None:
        self.by_code[str(code)] += 1
        self.by_path[path] += 1

    def to_json(self) -> dict[str, Any]:
        return {"by_code": dict(self.by_code), "by_path": dict(self.by_path)}


def error_value(error: BaseException) -> dict[str, str]:
    return {"error": f"{type(error).__name__}: {error}"}


def scheduler_figures(agent: Agent) -> dict[str, dict[str, Any]]:
    """Per job, what telemetry needs; tracebacks stay in status, not on this page."""
    return {
        name: {key: snapshot[key] for key in _JOB_FIELDS}
        for name, snapshot in agent.scheduler.snapshot().items()
    }


def _call(getter: Callable[[], Any]) -> Any:
    try:
        return getter()
    except Exception as error:  # one broken variable must not hide the others
        return error_value(error)


def collect_vars(agent: Agent, requests: RequestCounts) -> dict[str, Any]:
    """Every variable's current value, by name, in page order (getters are called now)."""
    published = list(agent.published.items())
    shadowed = sorted(name for name, _ in published if name in BUILTIN_NAMES)
    values: dict[str, Any] = {
        "cmdline": list(sys.orig_argv),
        "memstats": _call(memstats),
        "scheduler": _call(lambda: scheduler_figures(agent)),
        "events": _call(agent.events.stats),
        "workers": _call(agent.workers.stats),
        "expvar": {"requests": requests.to_json(), "shadowed": shadowed},
    }
    for name, getter in published:
        if name not in BUILTIN_NAMES:
            values[name] = _call(getter)
    return values


def encode_vars(values: dict[str, Any]) -> bytes:
    """One JSON object, one variable per line as Go's expvar writes it."""
    lines = []
    for name, value in values.items():
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as error:
            encoded = json.dumps(error_value(error))
        lines.append(f"{json.dumps(name)}: {encoded}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()
