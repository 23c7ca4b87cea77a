"""Layer precedence, merging and the "where does this value come from" queries."""

from __future__ import annotations

import pytest

from host.config import Config, Source, load_config


def test_sources_are_listed_in_ascending_priority_with_datadog_names():
    assert [source.value for source in Source] == [
        "default",
        "file",
        "environment-variable",
        "agent-runtime",
        "cli",
    ]


def test_each_layer_overrides_the_one_below(write):
    path = write("security-agent.yaml", "log_level: debug\n")
    config = load_config([path], env={"DD_LOG_LEVEL": "warn"})
    # Not declared yet, so DD_LOG_LEVEL is not bound: the file answers.
    assert (config.get("log_level"), config.source("log_level")) == ("debug", Source.FILE)

    config.declare("log_level", "info")
    assert (config.get("log_level"), config.source("log_level")) == ("warn", Source.ENV)

    config.set("log_level", "error")
    assert (config.get("log_level"), config.source("log_level")) == ("error", Source.RUNTIME)

    config.set("log_level", "off", Source.CLI)
    assert (config.get("log_level"), config.source("log_level")) == ("off", Source.CLI)

    expected_after_unset = [
        (Source.CLI, "error", Source.RUNTIME),
        (Source.RUNTIME, "warn", Source.ENV),
        (Source.ENV, "debug", Source.FILE),
        (Source.FILE, "info", Source.DEFAULT),
    ]
    for removed, value, source in expected_after_unset:
        config.unset("log_level", removed)
        assert (config.get("log_level"), config.source("log_level")) == (value, source)


def test_runtime_set_over_env_keeps_env_value_in_all_sources():
    config = Config(env={"DD_LOG_LEVEL": "warn"})
    config.declare("log_level", "info")
    config.set("log_level", "debug", Source.CLI)
    assert config.all_sources("log_level") == {
        "default": "info",
        "environment-variable": "warn",
        "cli": "debug",
    }


def test_two_files_are_deep_merged_the_later_winning(write):
    first = write(
        "datadog.yaml",
        """\
        api_key: abc
        log_level: info
        compliance_config:
          enabled: false
          dir: /etc/one
          endpoints:
            use_compression: true
        tags: [a, b]
        """,
    )
    second = write(
        "security-agent.yaml",
        """\
        log_level: debug
        compliance_config:
          enabled: true
          endpoints:
            batch_wait: 5
        tags: [c]
        """,
    )
    config = load_config([first, second], env={})
    assert config.as_dict() == {
        "api_key": "abc",
        "log_level": "debug",
        "compliance_config": {
            "enabled": True,
            "dir": "/etc/one",
            "endpoints": {"use_compression": True, "batch_wait": 5},
        },
        "tags": ["c"],  # lists are replaced, not concatenated
    }
    assert config.files == [first, second]
    assert config.origin("compliance_config.dir") == f"{first}:5"
    assert config.origin("compliance_config.enabled") == f"{second}:3"
    assert config.origin("tags") == f"{second}:6"


def test_a_scalar_in_a_later_file_replaces_a_mapping_and_the_reverse(write):
    first = write("one.yaml", "a:\n  b: 1\nc: 2\n")
    second = write("two.yaml", "a: 3\nc:\n  d: 4\n")
    config = load_config([first, second], env={})
    assert config.as_dict() == {"a": 3, "c": {"d": 4}}
    assert config.get("a.b") is None
    assert config.origin("a") == f"{second}:1"
    assert config.origin("c.d") == f"{second}:3"


def test_an_empty_value_in_a_later_file_does_not_erase_an_earlier_one(write):
    first = write("one.yaml", "api_key: abc\n")
    second = write("two.yaml", "api_key:\n")
    config = load_config([first, second], env={})
    assert config.get("api_key") == "abc"
    assert config.origin("api_key") == f"{first}:1"


def test_get_of_a_mapping_merges_every_layer(write):
    path = write(
        "security-agent.yaml",
        """\
        compliance_config:
          enabled: true
          endpoints:
            batch_wait: 5
        """,
    )
    config = load_config([path], env={"DD_COMPLIANCE_CONFIG_CHECK_INTERVAL": "10m"})
    config.declare("compliance_config.enabled", False)
    config.declare("compliance_config.check_interval", "20m")
    config.declare("compliance_config.host_benchmarks.enabled", True)
    config.set("compliance_config.endpoints.batch_max_size", 100, Source.CLI)
    assert config.get("compliance_config") == {
        "enabled": True,
        "check_interval": "10m",
        "host_benchmarks": {"enabled": True},
        "endpoints": {"batch_wait": 5, "batch_max_size": 100},
    }
    assert config.source("compliance_config") is Source.CLI


def test_a_higher_scalar_hides_lower_mappings():
    config = Config(env={})
    config.declare("compliance_config.enabled", False)
    config.set("compliance_config", "off")
    assert config.get("compliance_config") == "off"
    assert config.get("compliance_config.enabled") is False  # the default still answers


def test_get_of_an_unknown_key_returns_the_given_default():
    config = Config(env={})
    assert config.get("no.such.key") is None
    assert config.get("no.such.key", 42) == 42
    assert config.source("no.such.key") is Source.DEFAULT
    assert config.origin("no.such.key") == "default"
    assert config.all_sources("no.such.key") == {}
    assert config.is_set("no.such.key") is False


def test_get_returns_a_copy():
    config = Config(env={})
    config.declare("tags", ["a"])
    config.get_list("tags").append("b")
    config.get("tags").append("c")
    assert config.get("tags") == ["a"]
    assert config.schema.default("tags") == ["a"]


def test_is_set_ignores_defaults_and_empty_values(write):
    path = write("security-agent.yaml", "api_key:\nsite: datadoghq.eu\nnested:\n  key: 1\n")
    config = load_config([path], env={})
    config.declare("api_key", "")
    config.declare("site", "datadoghq.com")
    config.declare("hostname", "")
    assert config.is_set("api_key") is False
    assert config.get("api_key") == ""
    assert config.is_set("site") is True
    assert config.is_set("hostname") is False
    assert config.is_set("nested") is True
    assert config.is_set("nested.key") is True
    config.set("hostname", "box")
    assert config.is_set("hostname") is True
    config.unset("hostname", Source.RUNTIME)
    assert config.is_set("hostname") is False


def test_by_source_has_all_five_layers_as_nested_mappings(write):
    path = write("security-agent.yaml", "security_agent:\n  cmd_port: 6000\n")
    config = load_config([path], env={"DD_LOG_LEVEL": "warn"})
    config.declare("security_agent.cmd_port", 5010)
    config.declare("log_level", "info")
    config.set("security_agent.expvar_port", 6001)
    config.set("log_level", "debug", Source.CLI)
    assert config.by_source() == {
        "default": {"security_agent": {"cmd_port": 5010}, "log_level": "info"},
        "file": {"security_agent": {"cmd_port": 6000}},
        "environment-variable": {"log_level": "warn"},
        "agent-runtime": {"security_agent": {"expvar_port": 6001}},
        "cli": {"log_level": "debug"},
    }


def test_by_source_of_an_empty_config_still_lists_every_source():
    assert Config(env={}).by_source() == {
        "default": {},
        "file": {},
        "environment-variable": {},
        "agent-runtime": {},
        "cli": {},
    }


def test_all_sources_lists_each_layer_holding_the_key(write):
    path = write("security-agent.yaml", "log_level: debug\n")
    config = load_config([path], env={"DD_LOG_LEVEL": "warn"})
    config.declare("log_level", "info")
    config.set("log_level", "error")
    assert config.all_sources("log_level") == {
        "default": "info",
        "file": "debug",
        "environment-variable": "warn",
        "agent-runtime": "error",
    }


def test_origin_names_file_and_line_variable_or_source(write):
    path = write(
        "security-agent.yaml",
        """\
        # a comment
        security_agent:
          cmd_port: 6000
          expvar_port:
            6001
        """,
    )
    config = load_config([path], env={"DD_SITE": "datadoghq.eu"})
    config.declare("site", "datadoghq.com")
    config.declare("log_level", "info")
    config.set("hostname", "box")
    config.set("log_level", "debug", Source.CLI)
    assert config.origin("security_agent.cmd_port") == f"{path}:3"
    assert config.origin("security_agent.expvar_port") == f"{path}:5"  # the value's line
    assert config.origin("security_agent") == f"{path}:2"
    assert config.origin("site") == "DD_SITE (environment)"
    assert config.origin("hostname") == "agent-runtime"
    assert config.origin("log_level") == "cli"
    config.unset("log_level", Source.CLI)
    assert config.origin("log_level") == "default"


def test_a_value_inside_an_env_mapping_has_the_variable_as_origin():
    config = Config(env={"DD_EXTRA": '{"a": {"b": 1}}'})
    config.declare("extra", {})
    assert config.get("extra.a.b") == 1
    assert config.origin("extra.a.b") == "DD_EXTRA (environment)"


def test_set_replaces_a_whole_mapping_and_unset_removes_emptied_parents():
    config = Config(env={})
    config.set("a.b", 1)
    config.set("a.c", 2)
    config.set("a", {"d": 3})
    assert config.by_source()["agent-runtime"] == {"a": {"d": 3}}
    config.unset("a.d", Source.RUNTIME)
    assert config.by_source()["agent-runtime"] == {}
    assert config.is_set("a") is False


def test_a_flat_dotted_key_in_a_file_reads_as_nested(write):
    path = write("security-agent.yaml", "security_agent.cmd_port: 6000\n")
    config = load_config([path], env={})
    config.declare("security_agent.cmd_port", 5010)
    assert config.get_int("security_agent.cmd_port") == 6000
    assert config.origin("security_agent.cmd_port") == f"{path}:1"


def test_config_dir_is_the_directory_of_the_last_file(write, tmp_path):
    first = write("etc/datadog.yaml", "a: 1\n")
    second = write("etc/sa/security-agent.yaml", "b: 2\n")
    assert load_config([first, second], env={}).config_dir() == str(tmp_path / "etc" / "sa")
    assert load_config([], env={}).config_dir() is None
    missing = str(tmp_path / "nope.yaml")
    assert load_config([first, missing], env={}, required=False).config_dir() == str(
        tmp_path / "etc"
    )


@pytest.mark.parametrize("bad_key", ["", ".a", "a..b", "a."])
def test_set_refuses_keys_no_file_could_spell(bad_key):
    with pytest.raises(ValueError, match="configuration key") as caught:
        Config(env={}).set(bad_key, 1)
    assert "\n" not in str(caught.value)
