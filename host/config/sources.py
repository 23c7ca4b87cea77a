"""Where a configuration value comes from, with the names Datadog's agent uses for them."""

from __future__ import annotations

import enum


class Source(enum.Enum):
    """A configuration layer, listed in ascending priority: a later member overrides an earlier.

    The values are Datadog's source names, so ``config by-source`` output reads the same as the
    Go agent's.
    """

    DEFAULT = "default"
    """The default a plugin declared with ``schema.declare``."""

    FILE = "file"
    """The YAML config files (``datadog.yaml`` then ``security-agent.yaml``)."""

    ENV = "environment-variable"
    """A ``DD_*`` environment variable bound to a declared key."""

    RUNTIME = "agent-runtime"
    """A value the agent itself computed and stored while running."""

    CLI = "cli"
    """A value an operator changed while the agent runs (``config set``, the IPC API)."""
