"""The host's value checks: ports and choices, with the origin in the message."""

from __future__ import annotations

import pytest

from host.config import Config, ConfigError, get_choice, get_port, load_config


def test_a_valid_port_is_returned(write):
    path = write("security-agent.yaml", "security_agent:\n  cmd_port: '6000'\n")
    config = load_config([path], env={})
    assert get_port(config, "security_agent.cmd_port") == 6000


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_an_out_of_range_port_names_the_file_line(write, port):
    path = write("security-agent.yaml", f"security_agent:\n  cmd_port: {port}\n")
    config = load_config([path], env={})
    with pytest.raises(ConfigError) as caught:
        get_port(config, "security_agent.cmd_port")
    assert str(caught.value) == (
        f"{path}:2: security_agent.cmd_port: expected a port number between 1 and 65535, got {port}"
    )


def test_a_malformed_port_from_the_environment_names_the_variable():
    config = Config(env={"DD_SECURITY_AGENT_EXPVAR_PORT": "99999"})
    config.declare("security_agent.expvar_port", 5011)
    with pytest.raises(ConfigError) as caught:
        get_port(config, "security_agent.expvar_port")
    assert str(caught.value) == (
        "DD_SECURITY_AGENT_EXPVAR_PORT (environment): security_agent.expvar_port: expected a "
        "port number between 1 and 65535, got 99999"
    )


def test_a_non_numeric_port_is_a_config_error(write):
    path = write("security-agent.yaml", "health_port: eighty\n")
    config = load_config([path], env={})
    with pytest.raises(ConfigError) as caught:
        get_port(config, "health_port", allow_zero=True)
    assert str(caught.value) == f"{path}:1: health_port: expected an integer, got 'eighty'"


def test_zero_is_allowed_where_it_means_off():
    config = Config(env={})
    config.declare("health_port", 0)
    assert get_port(config, "health_port", allow_zero=True) == 0
    with pytest.raises(ConfigError) as caught:
        get_port(config, "health_port")
    assert str(caught.value) == ("health_port: expected a port number between 1 and 65535, got 0")


def test_choices_match_case_insensitively(write):
    levels = ("trace", "debug", "info", "warn", "error", "critical", "off")
    path = write("security-agent.yaml", "log_level: DEBUG\n")
    config = load_config([path], env={})
    assert get_choice(config, "log_level", levels) == "debug"
    config.set("log_level", "loud")
    with pytest.raises(ConfigError) as caught:
        get_choice(config, "log_level", levels)
    assert str(caught.value) == (
        "log_level: expected one of trace, debug, info, warn, error, critical, off, got 'loud'"
    )
