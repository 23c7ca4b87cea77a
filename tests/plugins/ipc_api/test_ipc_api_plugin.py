"""The plugin as the host sees it: its spec, config keys and refusals at start."""

from __future__ import annotations

import pytest
from support import FakeReactor, entry_point, make_agent
from twisted.logger import globalLogPublisher

import plugins.ipc_api
from host.bootstrap import StartupError


def _agent(tmp_path, text="", env=None):
    return make_agent(
        FakeReactor(), [entry_point("ipc_api", plugins.ipc_api)], text, tmp_path=tmp_path, env=env
    )


def test_spec_defaults(tmp_path):
    agent = _agent(tmp_path)
    spec = agent.runtimes["ipc_api"].spec
    assert (spec.enabled, spec.interval, spec.start_order, spec.security_component) == (
        True,
        None,
        20,
        False,
    )
    assert agent.config.get_str("cmd_host") == "localhost"
    assert agent.config.get_int("security_agent.cmd_port") == 5010


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "cmd_host: 192.168.1.5\n",
            "cmd_host: address was set to a non-loopback IP address: 192.168.1.5",
        ),
        (
            "ipc_address: 0.0.0.0\n",
            "ipc_address: address was set to a non-loopback IP address: 0.0.0.0",
        ),
        ("cmd_host: my-host\n", "cmd_host: address was set to an invalid IP address: my-host"),
    ],
)
def test_non_loopback_address_stops_the_start(tmp_path, text, message):
    with pytest.raises(StartupError) as info:
        _agent(tmp_path, text)
    assert str(info.value) == f"plugin ipc_api: {message}"


def test_bad_port_names_file_and_line(tmp_path):
    with pytest.raises(StartupError) as info:
        _agent(tmp_path, "security_agent:\n  cmd_port: 70000\n")
    assert str(info.value) == (
        f"plugin ipc_api: {tmp_path / 'security-agent.yaml'}:3: security_agent.cmd_port: "
        "expected a port number between 0 and 65535, got 70000"
    )


def test_ipc_address_is_a_deprecated_alias(tmp_path):
    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        _agent(tmp_path, "ipc_address: 127.0.0.2\n")
    finally:
        globalLogPublisher.removeObserver(seen.append)
    assert [e["log_format"] for e in seen if e.get("log_namespace") == "ipc_api"] == [
        "ipc_address is deprecated, use cmd_host instead"
    ]


def test_env_variable_sets_port(tmp_path):
    agent = _agent(tmp_path, env={"DD_SECURITY_AGENT_CMD_PORT": "6010"})
    assert agent.config.get_int("security_agent.cmd_port") == 6010
