"""The system-probe config file rules of the Go agent's newSysprobeConfig."""

from __future__ import annotations

import os

import pytest

from host.config import ConfigError, load_sysprobe_config, sysprobe_config_file

SYSPROBE_YAML = "runtime_security_config:\n  policies:\n    dir: /opt/policies\n"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, "/etc/sa/system-probe.yaml"),
        ("", "/etc/sa/system-probe.yaml"),
        ("/x/custom.yaml", "/x/custom.yaml"),
        ("/x/dir", "/x/dir/system-probe.yaml"),
        ("/x/dir/", "/x/dir/system-probe.yaml"),
        ("/x/file.yml", "/x/file.yml/system-probe.yaml"),
    ],
)
def test_which_file_a_path_designates(path, expected):
    assert sysprobe_config_file(path, "/etc/sa") == expected


def test_a_yaml_path_is_the_file_itself(write):
    path = write("custom-name.yaml", SYSPROBE_YAML)
    config = load_sysprobe_config(path, env={})
    assert config.get("runtime_security_config.policies.dir") == "/opt/policies"
    assert config.files == [path]


def test_another_path_is_a_directory_holding_system_probe_yaml(write, tmp_path):
    path = write("sp/system-probe.yaml", SYSPROBE_YAML)
    config = load_sysprobe_config(str(tmp_path / "sp"), env={})
    assert config.files == [path]
    assert config.origin("runtime_security_config.policies.dir") == f"{path}:3"


def test_no_path_uses_the_default_directory(write, tmp_path):
    path = write("etc/system-probe.yaml", SYSPROBE_YAML)
    config = load_sysprobe_config(None, env={}, default_dir=str(tmp_path / "etc"))
    assert config.files == [path]


@pytest.mark.parametrize("name", ["missing.yaml", "missing-dir", "missing-dir/x.yaml"])
def test_a_missing_file_is_ignored(tmp_path, name):
    config = load_sysprobe_config(str(tmp_path / name), env={"DD_SYSPROBE_SOCKET": "/s"})
    assert config.files == []
    assert config.as_dict() == {}
    config.declare("sysprobe_socket", "/default")
    assert config.get("sysprobe_socket") == "/s"


def test_malformed_yaml_is_wrapped_and_still_names_the_line(write):
    path = write("system-probe.yaml", "a: [1\n")
    with pytest.raises(ConfigError) as caught:
        load_sysprobe_config(path, env={})
    assert str(caught.value) == (
        f"unable to load system-probe config file: {path}:2:1: invalid YAML: "
        "expected ',' or ']', but got '<stream end>'"
    )


def test_a_non_mapping_file_is_wrapped(write):
    path = write("system-probe.yaml", "- a\n")
    with pytest.raises(ConfigError) as caught:
        load_sysprobe_config(path, env={})
    assert str(caught.value) == (
        f"unable to load system-probe config file: {path}:1: the top level must be a mapping "
        "of keys, got a list"
    )


def test_a_directory_named_like_a_yaml_file_is_wrapped(tmp_path):
    directory = tmp_path / "system-probe.yaml"
    directory.mkdir()
    with pytest.raises(ConfigError) as caught:
        load_sysprobe_config(str(directory), env={})
    assert str(caught.value) == (
        f"unable to load system-probe config file: {directory}: Is a directory"
    )


@pytest.mark.parametrize(
    ("argument", "shown_path"),
    [("system-probe.yaml", "system-probe.yaml"), (".", "./system-probe.yaml")],
)
def test_permission_denied_has_the_agent_message(tmp_path, run_as_nobody, argument, shown_path):
    directory = tmp_path / "etc"
    directory.mkdir()
    (directory / "system-probe.yaml").write_text(SYSPROBE_YAML)
    os.chmod(directory / "system-probe.yaml", 0)
    output = run_as_nobody(directory, lambda: load_sysprobe_config(argument, env={}))
    assert output == (
        f"ConfigError: cannot access the system-probe config file ({shown_path}: Permission "
        "denied); try running the command under the same user as the security agent"
    )
