"""The values plugins hand to the host through hooks.

They are plain frozen dataclasses so a plugin can build them without touching host internals,
and so the host can validate them in one place.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from host.cli_context import CliContext
    from host.config import Source

HealthCatalog = Literal["liveness", "readiness"]


class FatalStartError(Exception):
    """Raise from a long-running plugin's ``run()`` when the agent must not run without it.

    The host logs the message as one critical line (no traceback), starts nothing more,
    stops what already started and exits 1 — Datadog's "Error while starting api server,
    exiting" behaviour. Any other exception only marks the plugin failed and unhealthy.
    """


@dataclass(frozen=True)
class PluginSpec:
    """How the host runs one plugin; returned by ``security_agent_plugin_spec``.

    The host calls the plugin's ``security_agent_run`` once at start when ``interval`` is
    ``None`` (a long-running service: ``run()`` sets it up and returns, possibly a Deferred that
    fires once it is up), or every ``interval`` seconds otherwise, shifted by a deterministic
    jitter of at most a tenth of the interval. Runs of one plugin never overlap: a run still
    going when its next turn comes makes that turn skipped and counted.
    """

    enabled: bool = True
    """Whether the current configuration turns this plugin on; a disabled plugin never runs."""

    interval: float | None = None
    """Seconds between two runs, or ``None`` to run once at start."""

    start_order: int = 100
    """Lower starts first; the runtime security plugin starts before the others."""

    stop_order: int | None = None
    """Lower stops first; by default plugins stop in reverse start order. The runtime security
    plugin starts early and also stops first (as the Go agent does), so it sets both."""

    run_deadline: float | None = None
    """A run lasting longer marks the plugin unhealthy; defaults to ``interval`` when periodic."""

    stop_timeout: float = 10.0
    """Seconds ``security_agent_stop`` may take before the host abandons it with an error."""

    blocking: bool = False
    """Run ``run()`` in the host's bounded worker pool instead of the reactor thread."""

    security_component: bool = False
    """Counts as a security component: with none of them enabled the agent exits at start."""

    requires_api_key: bool = False
    """The plugin, as configured, sends to a destination that needs ``api_key``."""

    health: HealthCatalog = "liveness"
    """The health catalog the plugin is registered in."""

    def __post_init__(self) -> None:
        if self.interval is not None and self.interval <= 0:
            raise ValueError(f"interval must be positive, got {self.interval!r}")
        if self.run_deadline is not None and self.run_deadline <= 0:
            raise ValueError(f"run_deadline must be positive, got {self.run_deadline!r}")
        if self.stop_timeout <= 0:
            raise ValueError(f"stop_timeout must be positive, got {self.stop_timeout!r}")
        if self.health not in ("liveness", "readiness"):
            raise ValueError(f"health must be 'liveness' or 'readiness', got {self.health!r}")

    @property
    def stop_key(self) -> int:
        """Sort key of the stop sequence."""
        return self.stop_order if self.stop_order is not None else -self.start_order

    @property
    def effective_deadline(self) -> float | None:
        """The deadline the scheduler enforces."""
        return self.run_deadline if self.run_deadline is not None else self.interval


@dataclass(frozen=True)
class RuntimeSetting:
    """A setting that can be read and changed while the agent runs (``config set NAME VALUE``).

    ``setter`` receives the raw value (usually a string from the CLI or the API) and the
    config source to record; it raises ``ValueError`` with a one-line message for a bad value.
    """

    name: str
    description: str
    getter: Callable[[], Any]
    setter: Callable[[Any, Source], None]
    hidden: bool = False


@dataclass(frozen=True)
class StatusSection:
    """One plugin's part of ``security-agent status``.

    ``data`` is what the JSON status shows under ``key``; ``text`` is the human rendering
    (a title line is added by the host).
    """

    key: str
    title: str
    data: Mapping[str, Any]
    text: str = ""


@dataclass
class FlareBuilder:
    """Collects files for a flare archive; plugins add theirs in ``security_agent_flare``.

    Names are relative paths inside the archive. The archive writer scrubs secrets from every
    text file, so plugins add raw content.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add_file(self, name: str, content: bytes | str) -> None:
        """Add (or replace) one file; ``name`` must be relative and stay inside the archive."""
        parts = name.replace("\\", "/").split("/")
        if name.startswith("/") or ".." in parts or not name:
            raise ValueError(
                f"flare file name must be a relative path inside the archive: {name!r}"
            )
        self.files[name] = content.encode() if isinstance(content, str) else content

    def add_error(self, message: str) -> None:
        """Record something that could not be collected; it ends up in the archive's notes."""
        self.errors.append(message)


@dataclass(frozen=True)
class CliCommand:
    """A ``security-agent`` subcommand contributed by a plugin.

    ``configure`` adds arguments (and nested subparsers if needed) to the subcommand's parser;
    ``run`` gets a :class:`host.cli_context.CliContext` and the parsed arguments and returns the
    process exit code.
    """

    name: str
    help: str
    run: Callable[[CliContext, argparse.Namespace], int]
    configure: Callable[[argparse.ArgumentParser], None] | None = None
    aliases: tuple[str, ...] = ()


# --- the command API: routes other plugins add to the IPC API --------------------------------


@dataclass(frozen=True)
class ApiRequest:
    """One authenticated request to the agent's command API, as a route handler sees it.

    Authentication, TLS, size limits and method checks are done before a handler runs.
    """

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    """Path parameters, e.g. ``{"setting": "log_level"}`` for ``/agent/config/{setting}``."""
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header names in lower case."""
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        """The body as an ``application/x-www-form-urlencoded`` form (first value per key)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.body or b"null")


@dataclass(frozen=True)
class ApiResponse:
    """What a route handler returns. ``body`` that is not bytes or str is sent as JSON."""

    status: int = 200
    body: Any = b""
    content_type: str | None = None

    def encoded(self) -> tuple[bytes, str]:
        """The body bytes and their content type."""
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), self.content_type or "application/json"


@dataclass(frozen=True)
class ApiRoute:
    """A route on the command API, contributed through ``security_agent_api_routes``.

    ``path`` may hold ``{name}`` segments; ``handler`` returns an :class:`ApiResponse` or a
    Deferred/coroutine of one, and runs in the reactor thread.
    """

    path: str
    methods: tuple[str, ...]
    handler: Callable[[ApiRequest], Any]
    description: str = ""


# --- events: what plugins produce and sinks deliver ------------------------------------------


@dataclass(frozen=True)
class Event:
    """One finding, security event or metric batch on its way to the sinks.

    ``track`` says what it is (``compliance``, ``runtime``, ``metrics`` …); sinks subscribe to
    tracks. ``id`` is unique per event so a receiver can de-duplicate after a retry.
    """

    track: str
    payload: Mapping[str, Any]
    id: str
    timestamp: float


@runtime_checkable
class EventSink(Protocol):
    """A destination for events, contributed through ``security_agent_event_sinks``.

    ``send`` is called in the reactor thread for every event on one of ``tracks`` (an empty
    set means every track); it must not block: queue, spool, or write a line and return.
    """

    name: str
    tracks: frozenset[str]

    def send(self, event: Event) -> None: ...

    def stats(self) -> Mapping[str, Any]: ...
