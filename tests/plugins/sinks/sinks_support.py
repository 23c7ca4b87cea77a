"""Shared by the sinks tests: a plugin that produces events and so keeps the agent running."""

from __future__ import annotations

from support import entry_point, plugin_module

from host import PluginSpec


def producer():
    return entry_point(
        "producer",
        plugin_module(
            "producer",
            security_agent_plugin_spec=lambda agent: PluginSpec(security_component=True),
            security_agent_run=lambda agent: None,
        ),
    )
