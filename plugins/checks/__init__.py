"""The ``checks`` plugin: runs datadog_checks-style custom checks, rtloader-style.

It provides the builtin modules (``aggregator``, ``datadog_agent``, ``_util``, ``tagger``,
``containers``, ``kubeutil``, ``util``) in ``sys.modules`` before any check is imported, loads
checks from ``confd_path`` and ``additional_checksd`` (or installed ``datadog_checks.<name>``
packages), schedules one job per instance on ``check_runners`` runner threads and flushes the
aggregator to the ``metrics`` sinks every 15 s. Configuration keys are Datadog's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from host import CliCommand, FlareBuilder, PluginSpec, StatusSection, hookimpl
from plugins.checks.cli import configure_check, configure_list, list_checks, run_check
from plugins.checks.runner import CheckRunner
from plugins.checks.status_text import runner_text

if TYPE_CHECKING:
    from host.agent import Agent
    from host.config import ConfigSchema

log = Logger(namespace="checks")

STATE = "checks"
"""The name of this plugin's state on the agent (``agent.plugin_state``): the running
:class:`CheckRunner`, or ``None`` before ``run`` and after ``stop``."""


def runner_of(agent: Agent) -> CheckRunner | None:
    runner: CheckRunner | None = agent.plugin_state(STATE, lambda: None)
    return runner


@hookimpl
def security_agent_config_schema(schema: ConfigSchema) -> None:
    schema.declare("checks.enabled", True)
    schema.declare("confd_path", "/etc/security-agent/conf.d", path=True)
    schema.declare("additional_checksd", "/etc/security-agent/checks.d", path=True)
    schema.declare("check_runners", 4)


@hookimpl
def security_agent_plugin_spec(agent: Agent) -> PluginSpec:
    runners = agent.config.get_int("check_runners")
    if runners < 1:
        raise ValueError(str(agent.config.value_error("check_runners", "must be at least 1")))
    return PluginSpec(enabled=agent.config.get_bool("checks.enabled"), start_order=200)


@hookimpl
def security_agent_run(agent: Agent) -> None:
    runner = CheckRunner(agent)
    agent.drop_plugin_state(STATE)
    agent.plugin_state(STATE, lambda: runner)
    for name, getter in (("runner", runner.runner_stats), ("aggregator", runner.aggregator_stats)):
        try:
            agent.publish(name, getter)
        except ValueError as error:
            log.error("checks: cannot publish {name}: {error}", name=name, error=error)
    runner.start()


@hookimpl
def security_agent_stop(agent: Agent) -> Any:
    runner = runner_of(agent)
    agent.drop_plugin_state(STATE)
    if runner is None:
        return None
    return runner.stop()


@hookimpl
def security_agent_status(agent: Agent) -> StatusSection | None:
    runner = runner_of(agent)
    if runner is None:
        return None
    stats = runner.runner_stats()
    return StatusSection(key="runnerStats", title="Collector", data=stats, text=runner_text(stats))


@hookimpl
def security_agent_flare(agent: Agent, flare: FlareBuilder) -> None:
    """The runner's figures and every check configuration (the archive scrubs secrets)."""
    runner = runner_of(agent)
    if runner is not None:
        flare.add_file("checks/runner.json", json.dumps(runner.runner_stats(), indent=2))
    confd = agent.config.get_str("confd_path")
    for directory, _dirs, files in os.walk(confd):
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml", ".yaml.default")):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as handle:
                    content = handle.read()
            except OSError as error:
                flare.add_error(f"checks: cannot read {path}: {error.strerror}")
                continue
            flare.add_file(f"checks/conf.d/{os.path.relpath(path, confd)}", content)


@hookimpl
def security_agent_cli_commands() -> Iterable[CliCommand]:
    return [
        CliCommand(
            "check", "Run a custom check once and print what it submits", run_check, configure_check
        ),
        CliCommand(
            "checks",
            "List the configured custom checks and whether they load",
            list_checks,  # "list" is the only subcommand
            _configure_checks,
        ),
    ]


def _configure_checks(parser: Any) -> None:
    sub = parser.add_subparsers(dest="checks_command", required=True)
    configure_list(sub.add_parser("list", help="configured checks and their state"))
