"""Settings the host lets operators change while the agent runs.

Only ``log_level`` belongs to the host (logging is host-owned); plugins add theirs through
``security_agent_runtime_settings``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from host.config import Source
from host.logs import LEVELS, parse_level
from host.plugin_types import RuntimeSetting

if TYPE_CHECKING:
    from host.agent import Agent


class SettingNotFoundError(KeyError):
    """No runtime setting of that name (the API answers 400)."""

    def __str__(self) -> str:
        return f"setting {self.args[0]} not found"


def host_runtime_settings(agent: Agent) -> list[RuntimeSetting]:
    def get_level() -> str:
        if agent.logs is not None:
            return agent.logs.level
        return parse_level(agent.config.get_str("log_level"))

    def set_level(value: Any, source: Source) -> None:
        level = parse_level(str(value))
        if agent.logs is not None:
            agent.logs.set_level(level)
        agent.config.set("log_level", level, source)

    return [
        RuntimeSetting(
            name="log_level",
            description=(
                "Set/get the log level, valid values are: "
                + ", ".join(LEVELS[:-1])
                + f" and {LEVELS[-1]}"
            ),
            getter=get_level,
            setter=set_level,
        )
    ]


def get_setting(agent: Agent, name: str) -> Any:
    try:
        return agent.runtime_settings[name].getter()
    except KeyError:
        raise SettingNotFoundError(name) from None


def set_setting(agent: Agent, name: str, value: Any, source: Source = Source.CLI) -> None:
    """Change a runtime setting; ``ValueError`` for a bad value, ``SettingNotFoundError``."""
    try:
        setting = agent.runtime_settings[name]
    except KeyError:
        raise SettingNotFoundError(name) from None
    setting.setter(value, source)
