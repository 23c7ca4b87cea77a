"""DD_* environment variables: bound to declared keys only, converted to the default's type."""

from __future__ import annotations

import pytest

from host.config import Config, ConfigError, Source, load_config


@pytest.mark.parametrize(
    ("default", "raw", "expected"),
    [
        (False, "true", True),
        (False, "YES", True),
        (True, "off", False),
        (True, "0", False),
        (0, "5010", 5010),
        (0, " -3 ", -3),
        (0.0, "2.5", 2.5),
        (0.0, "7", 7.0),
        ([], "a:1 b:2\tc:3", ["a:1", "b:2", "c:3"]),
        ((), "one", ["one"]),
        ({}, '{"a": {"b": 1}}', {"a": {"b": 1}}),
        ("info", "debug", "debug"),
        ("20m", "90s", "90s"),
        (None, "secret", "secret"),
    ],
)
def test_env_values_convert_to_the_type_of_the_default(default, raw, expected):
    config = Config(env={"DD_SOME_KEY": raw})
    config.declare("some.key", default)
    assert config.get("some.key") == expected
    assert type(config.get("some.key")) is type(expected)
    assert config.source("some.key") is Source.ENV


@pytest.mark.parametrize(
    ("default", "raw", "problem"),
    [
        (0, "abc", "expected an integer, got 'abc'"),
        (0, "1.5", "expected an integer, got '1.5'"),
        (0.0, "fast", "expected a number, got 'fast'"),
        (False, "maybe", "expected a boolean (true or false), got 'maybe'"),
        ({}, "[1, 2]", "expected a JSON object, got '[1, 2]'"),
        ({}, "{not json", "expected a JSON object, got '{not json'"),
    ],
)
def test_a_bad_env_value_fails_at_declare_naming_the_variable(default, raw, problem):
    config = Config(env={"DD_SECURITY_AGENT_CMD_PORT": raw})
    with pytest.raises(ConfigError) as caught:
        config.declare("security_agent.cmd_port", default)
    assert str(caught.value) == (
        f"DD_SECURITY_AGENT_CMD_PORT (environment): security_agent.cmd_port: {problem}"
    )


def test_declaring_through_the_bare_schema_reads_the_environment_too():
    config = Config(env={"DD_SECURITY_AGENT_CMD_PORT": "abc", "DD_LOG_LEVEL": "warn"})
    config.schema.declare("log_level", "info", owner="logging")
    assert config.get("log_level") == "warn"
    with pytest.raises(ConfigError) as caught:
        config.schema.declare("security_agent.cmd_port", 5010, owner="ipc_api")
    assert str(caught.value) == (
        "DD_SECURITY_AGENT_CMD_PORT (environment): security_agent.cmd_port: "
        "expected an integer, got 'abc'"
    )


def test_aliases_are_tried_after_the_automatic_name_first_present_wins():
    env_vars = ("DD_SECURITY_AGENT_INTERNAL_PROFILING_SITE", "DD_SITE")
    key = "security_agent.internal_profiling.site"

    def declared(env):
        config = Config(env=env)
        config.declare(key, "datadoghq.com", env=env_vars)
        return config.get(key), config.origin(key)

    assert declared({"DD_SITE": "datadoghq.eu"}) == ("datadoghq.eu", "DD_SITE (environment)")
    assert declared(
        {
            "DD_SITE": "datadoghq.eu",
            "DD_SECURITY_AGENT_INTERNAL_PROFILING_SITE": "us3.datadoghq.com",
        }
    ) == ("us3.datadoghq.com", "DD_SECURITY_AGENT_INTERNAL_PROFILING_SITE (environment)")
    assert declared({}) == ("datadoghq.com", "default")


def test_an_alias_error_names_the_alias():
    config = Config(env={"DD_PROFILING_PERIOD_SECONDS": "soon"})
    with pytest.raises(ConfigError) as caught:
        config.declare("profiling.period", 60, env=["DD_PROFILING_PERIOD_SECONDS"])
    assert str(caught.value) == (
        "DD_PROFILING_PERIOD_SECONDS (environment): profiling.period: expected an integer, "
        "got 'soon'"
    )


def test_a_single_alias_may_be_given_as_a_string():
    config = Config(env={"DD_URL": "https://intake.example"})
    config.declare("dd_url", "", env="DD_URL")
    assert config.get("dd_url") == "https://intake.example"
    assert config.schema.spec("dd_url").env_vars == ("DD_DD_URL", "DD_URL")


def test_an_empty_variable_counts_as_unset():
    config = Config(env={"DD_API_KEY": "", "DD_SITE": ""})
    config.declare("api_key", "")
    config.declare("site", "datadoghq.com", env=["DD_SITE"])
    assert config.is_set("api_key") is False
    assert config.get("site") == "datadoghq.com"


def test_variables_of_undeclared_keys_are_ignored(write):
    path = write("security-agent.yaml", "log_level: debug\n")
    config = load_config([path], env={"DD_LOG_LEVEL": "warn", "DD_SOMETHING_ELSE": "x"})
    assert config.as_dict() == {"log_level": "debug"}
    assert config.by_source()["environment-variable"] == {}
    assert config.get("something_else") is None
    assert config.get("something.else") is None


def test_env_wins_over_the_file(write):
    path = write("security-agent.yaml", "security_agent:\n  cmd_port: 6000\n")
    config = load_config([path], env={"DD_SECURITY_AGENT_CMD_PORT": "7000"})
    config.declare("security_agent.cmd_port", 5010)
    assert config.get_int("security_agent.cmd_port") == 7000
    assert config.all_sources("security_agent.cmd_port") == {
        "default": 5010,
        "file": 6000,
        "environment-variable": 7000,
    }


def test_env_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("DD_SECURITY_AGENT_EXPVAR_PORT", "6011")
    config = load_config([])
    config.declare("security_agent.expvar_port", 5011)
    assert config.get("security_agent.expvar_port") == 6011
    assert (
        config.origin("security_agent.expvar_port") == "DD_SECURITY_AGENT_EXPVAR_PORT (environment)"
    )


def test_a_bad_string_env_value_fails_when_read_typed_naming_the_variable():
    config = Config(env={"DD_COMPLIANCE_CONFIG_CHECK_INTERVAL": "often"})
    config.declare("compliance_config.check_interval", "20m")
    with pytest.raises(ConfigError) as caught:
        config.get_duration("compliance_config.check_interval")
    assert str(caught.value) == (
        "DD_COMPLIANCE_CONFIG_CHECK_INTERVAL (environment): compliance_config.check_interval: "
        "expected a duration such as 10s, 500ms or 1h30m, got 'often'"
    )


def test_an_env_mapping_merges_with_the_file_mapping(write):
    path = write("security-agent.yaml", "extra:\n  a: 1\n  b: 2\n")
    config = load_config([path], env={"DD_EXTRA": '{"b": 3, "c": 4}'})
    config.declare("extra", {})
    assert config.get("extra") == {"a": 1, "b": 3, "c": 4}
