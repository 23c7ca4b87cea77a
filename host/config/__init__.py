"""The agent's layered configuration.

Plugins declare the keys they read in the ``security_agent_config_schema`` hook and read them
through ``agent.config``::

    @hookimpl
    def security_agent_config_schema(schema: ConfigSchema) -> None:
        schema.declare("compliance_config.enabled", False)
        schema.declare("compliance_config.check_interval", "20m")

    enabled = agent.config.get_bool("compliance_config.enabled")
    every = agent.config.get_duration("compliance_config.check_interval")   # seconds

Values come from five layers with Datadog's names, lowest priority first: ``default``,
``file`` (``datadog.yaml`` then ``security-agent.yaml``), ``environment-variable``
(``DD_<KEY>``), ``agent-runtime`` and ``cli``. Every error for bad input is a one-line
``ConfigError`` naming the file and line, or the environment variable, and the key.
"""

from __future__ import annotations

from host.config.config import Config
from host.config.errors import ConfigError
from host.config.loading import load_config, load_sysprobe_config, sysprobe_config_file
from host.config.schema import ConfigSchema, KeySpec
from host.config.sources import Source
from host.config.validation import get_choice, get_port

__all__ = [
    "Config",
    "ConfigError",
    "ConfigSchema",
    "KeySpec",
    "Source",
    "get_choice",
    "get_port",
    "load_config",
    "load_sysprobe_config",
    "sysprobe_config_file",
]
