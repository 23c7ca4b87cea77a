"""From configuration to a running :class:`~host.logs.LogControl` on the agent.

``security-agent start`` owns the console and begins logging itself; under ``twistd`` and
``twist`` those tools already log to their own console or file, so only the agent's own log
file is added.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from twisted.logger import Logger

from host.logs import LogControl, bridge_stdlib_logging, parse_level

if TYPE_CHECKING:
    from host.agent import Agent

log = Logger(namespace="host.logsetup")


def log_control_for(agent: Agent, *, console: bool) -> LogControl:
    config = agent.config
    file_path = None
    if not config.get_bool("disable_file_logging"):
        file_path = config.get_str("security_agent.log_file") or None
    return LogControl(
        level=parse_level(config.get_str("log_level")),
        json_format=config.get_bool("log_format_json"),
        console=sys.stderr if console and config.get_bool("log_to_console") else None,
        file_path=file_path,
        max_size=config.get_size("log_file_max_size"),
        max_rolls=config.get_int("log_file_max_rolls"),
    )


def begin_agent_logging(agent: Agent) -> LogControl:
    """Start logging for ``security-agent start`` (console and file, as configured)."""
    return _install(agent, log_control_for(agent, console=True), begin=True)


def attach_agent_logging(agent: Agent, *, console: bool) -> LogControl:
    """Add the agent's observers to a publisher someone else (twistd, twist) began."""
    return _install(agent, log_control_for(agent, console=console), begin=False)


def _install(agent: Agent, control: LogControl, *, begin: bool) -> LogControl:
    if begin:
        control.begin()
    else:
        control.attach()
    bridge_stdlib_logging()
    agent.logs = control
    if control.file_error:
        log.warn("Logging to the console only: {error}", error=control.file_error)
    return control
