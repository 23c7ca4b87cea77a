"""The values plugins hand to the host through hooks.

They are plain frozen dataclasses so a plugin can build them without touching host internals,
and so the host can validate them in one place.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from host.cli_context import CliContext
    from host.config import Source

HealthCatalog = Literal["liveness", "readiness"]


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
    """Lower starts first and stops last; the runtime security plugin starts before the others."""

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
