"""The security-agent host: discovers plugins, schedules their ``run()``, tracks health.

Plugin authors need only two names from here::

    from host import hookimpl, PluginSpec

and the hooks documented in :mod:`host.hookspecs`. A plugin is a module (or any object) with
``@hookimpl`` functions, declared as an entry point of group ``security_agent`` in its
distribution's ``pyproject.toml``::

    [project.entry-points.security_agent]
    my_plugin = "my_package.plugin"
"""

from __future__ import annotations

import pluggy

from host.plugin_types import (
    ApiRequest,
    ApiResponse,
    ApiRoute,
    CliCommand,
    Event,
    EventSink,
    FatalStartError,
    FlareBuilder,
    PluginSpec,
    RuntimeSetting,
    StatusSection,
)

__version__ = "0.1.0"

PROJECT_NAME = "security_agent"
"""The pluggy project name and the entry-point group plugins are declared under."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorator marking a plugin function as the implementation of a hook."""

__all__ = [
    "PROJECT_NAME",
    "ApiRequest",
    "ApiResponse",
    "ApiRoute",
    "CliCommand",
    "Event",
    "EventSink",
    "FatalStartError",
    "FlareBuilder",
    "PluginSpec",
    "RuntimeSetting",
    "StatusSection",
    "__version__",
    "hookimpl",
]
