"""Declaring keys: defaults, conflicts between plugins, and what the schema reports."""

from __future__ import annotations

import pytest

from host.config import Config, ConfigSchema


def test_declared_keys_defaults_and_lookup():
    schema = ConfigSchema()
    schema.declare("security_agent.expvar_port", 5011, owner="expvar")
    schema.declare("security_agent.cmd_port", 5010, owner="ipc_api", description="IPC port")
    assert schema.keys() == ["security_agent.cmd_port", "security_agent.expvar_port"]
    assert schema.default("security_agent.cmd_port") == 5010
    assert schema.is_declared("security_agent.cmd_port") is True
    assert schema.is_declared("security_agent") is False
    spec = schema.spec("security_agent.cmd_port")
    assert (spec.owner, spec.description, spec.env_vars) == (
        "ipc_api",
        "IPC port",
        ("DD_SECURITY_AGENT_CMD_PORT",),
    )


def test_an_undeclared_key_has_no_default():
    with pytest.raises(KeyError) as caught:
        ConfigSchema().default("nope")
    assert caught.value.args == ("configuration key 'nope' was never declared",)


def test_declaring_twice_with_another_default_names_both_owners():
    schema = ConfigSchema()
    schema.declare("security_agent.cmd_port", 5010, owner="ipc_api")
    with pytest.raises(ValueError, match="declared twice") as caught:
        schema.declare("security_agent.cmd_port", 5011, owner="other")
    assert str(caught.value) == (
        "security_agent.cmd_port: declared twice with different defaults: 5010 by plugin "
        "'ipc_api' and 5011 by plugin 'other'"
    )


def test_defaults_of_another_type_conflict_even_when_equal():
    schema = ConfigSchema()
    schema.declare("health_port", 0)
    with pytest.raises(ValueError, match="declared twice") as caught:
        schema.declare("health_port", False, owner="health")
    assert str(caught.value) == (
        "health_port: declared twice with different defaults: 0 by the host and False by "
        "plugin 'health'"
    )


def test_declaring_twice_with_the_same_default_merges_the_aliases():
    schema = ConfigSchema()
    schema.declare("site", "datadoghq.com", env=["DD_SITE"], owner="a")
    schema.declare("site", "datadoghq.com", env=["DD_OTHER_SITE", "DD_SITE"], owner="b")
    spec = schema.spec("site")
    assert spec.env_vars == ("DD_SITE", "DD_OTHER_SITE")
    assert spec.owner == "a"


def test_a_key_cannot_nest_under_a_key_with_a_scalar_default():
    schema = ConfigSchema()
    schema.declare("compliance_config", "on", owner="one")
    with pytest.raises(ValueError, match="cannot be declared") as caught:
        schema.declare("compliance_config.enabled", False, owner="two")
    assert str(caught.value) == (
        "compliance_config.enabled: cannot be declared under 'compliance_config', whose default "
        "'on' (declared by plugin 'one') is not a mapping"
    )
    other = ConfigSchema()
    other.declare("a.b", 1)
    with pytest.raises(ValueError, match="cannot be declared"):
        other.declare("a", 2)


def test_a_mapping_default_and_its_sub_keys_combine_in_any_order():
    config = Config(env={})
    config.declare("compliance_config.enabled", False)
    config.declare("compliance_config", {"dir": "/etc/compliance.d"})
    assert config.get("compliance_config") == {"enabled": False, "dir": "/etc/compliance.d"}


@pytest.mark.parametrize("bad_key", ["", "a..b", ".a", "a."])
def test_malformed_keys_are_refused(bad_key):
    with pytest.raises(ValueError, match="configuration key"):
        ConfigSchema().declare(bad_key, 1)


def test_a_config_applies_keys_already_in_the_schema_it_is_built_with():
    schema = ConfigSchema()
    schema.declare("log_level", "info")
    config = Config(env={"DD_LOG_LEVEL": "debug"}, schema=schema)
    assert config.get("log_level") == "debug"
    assert config.schema is schema


def test_the_default_is_copied_on_declare():
    tags = ["a"]
    schema = ConfigSchema()
    schema.declare("tags", tags)
    tags.append("b")
    assert schema.default("tags") == ["a"]
