"""What a CLI subcommand gets: the global options and the agent, built on demand.

Commands that only talk to a running agent need the configuration (ports, token path) but
never start anything; :meth:`CliContext.agent` builds an :class:`~host.agent.Agent` the same
way the daemon does, without starting it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from host.bootstrap import AgentOptions, build_agent

if TYPE_CHECKING:
    from host.agent import Agent
    from host.config import Config


@dataclass
class CliContext:
    options: AgentOptions
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    no_color: bool = False
    _agent: Agent | None = None

    def agent(self) -> Agent:
        """The agent as configured (plugins loaded, nothing started). Raises
        :class:`host.bootstrap.StartupError` for bad configuration."""
        if self._agent is None:
            from twisted.internet import reactor

            self._agent = build_agent(self.options, reactor)
        return self._agent

    def config(self) -> Config:
        return self.agent().config

    def print(self, *args: Any) -> None:
        print(*args, file=self.stdout)

    def error(self, *args: Any) -> None:
        print(*args, file=self.stderr)
