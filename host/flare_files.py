"""Collecting the files plugins contribute to a flare.

The archive itself (zip, scrubbing, where it goes) belongs to whoever builds the flare; the
host only gathers, so that one plugin failing to contribute is noted in the archive instead of
losing the whole flare.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from host.plugin_types import FlareBuilder
from host.status import collect_status, render_text

if TYPE_CHECKING:
    from host.agent import Agent


def collect_flare_files(agent: Agent) -> FlareBuilder:
    """The host's own files (status, plugins, runtime settings) plus every plugin's."""
    flare = FlareBuilder()
    status = collect_status(agent)
    flare.add_file("status.json", json.dumps(status, indent=2, default=str))
    flare.add_file("status.log", render_text(status))
    flare.add_file("plugins.json", json.dumps([r.to_json() for r in agent.plugins], indent=2))
    settings = {}
    for name, setting in sorted(agent.runtime_settings.items()):
        try:
            settings[name] = setting.getter()
        except Exception as exc:  # a broken getter is worth reporting, not fatal
            settings[name] = f"<error: {exc}>"
    flare.add_file("runtime_config_dump.json", json.dumps(settings, indent=2, default=str))
    for plugin_name, result in agent.call_each("security_agent_flare", agent=agent, flare=flare):
        if isinstance(result, Exception):
            flare.add_error(f"{plugin_name}: {type(result).__name__}: {result}")
    return flare
