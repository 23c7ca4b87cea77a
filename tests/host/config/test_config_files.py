"""Loading config files: every problem is one line naming the file (and line)."""

from __future__ import annotations

import os

import pytest

from host.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1\n", "2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
        ("a: b: c\n", "1:5: invalid YAML: mapping values are not allowed here"),
        (
            "a:\n  - 1\n b: 2\n",
            "3:2: invalid YAML: expected <block end>, but found '<block mapping start>'",
        ),
        ("a: 1\n\tb: 2\n", "2:1: invalid YAML: found character '\\t' that cannot start any token"),
        ("a: &x 1\nb: *y\n", "2:4: invalid YAML: found undefined alias 'y'"),
        (
            "a: 1\n---\nb: 2\n",
            "2:1: invalid YAML: expected a single document in the stream, "
            "but found another document",
        ),
        (
            "a: !!python/object:os.system x\n",
            "1:4: invalid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system'",
        ),
        ("when: 2024-13-01\n", "1:7: invalid YAML: month must be in 1..12"),
        ("? [1]\n: 2\n", "1: keys must be plain names, not lists or mappings"),
        ("a: &x {b: *x}\n", "1: a mapping may not contain itself through an alias"),
    ],
)
def test_malformed_yaml_names_file_line_and_column(write, text, expected):
    path = write("security-agent.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config([path], env={})
    assert str(caught.value) == f"{path}:{expected}"


def test_undecodable_bytes_are_a_config_error(tmp_path):
    path = tmp_path / "security-agent.yaml"
    path.write_bytes(b"a: \xff\n")
    with pytest.raises(ConfigError) as caught:
        load_config([str(path)], env={})
    assert str(caught.value) == (
        f"{path}: invalid YAML: unacceptable character #x00ff: invalid start byte (at character 3)"
    )


@pytest.mark.parametrize(
    ("text", "kind", "line"),
    [
        ("- a\n- b\n", "a list", 1),
        ("# header\n\nhello\n", "a string", 3),
        ("5010\n", "an integer", 1),
        ("true\n", "a boolean", 1),
    ],
)
def test_top_level_must_be_a_mapping(write, text, kind, line):
    path = write("security-agent.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config([path], env={})
    assert (
        str(caught.value) == f"{path}:{line}: the top level must be a mapping of keys, got {kind}"
    )


@pytest.mark.parametrize("text", ["", "# only a comment\n", "~\n", "---\n"])
def test_an_empty_file_is_an_empty_mapping(write, text):
    path = write("security-agent.yaml", text)
    config = load_config([path], env={})
    assert config.as_dict() == {}
    assert config.files == [path]


def test_a_missing_required_file_is_an_error(tmp_path):
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config([path], env={})
    assert str(caught.value) == f"{path}: no such config file"


def test_missing_optional_files_are_skipped(write, tmp_path):
    present = write("datadog.yaml", "a: 1\n")
    config = load_config(
        [str(tmp_path / "nope.yaml"), present, str(tmp_path / "no" / "dir.yaml")],
        env={},
        required=False,
    )
    assert config.files == [present]
    assert config.as_dict() == {"a": 1}


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config([str(tmp_path)], env={})
    assert str(caught.value) == f"{tmp_path}: is a directory, not a config file"


def test_bad_typed_values_name_file_line_and_key(write):
    path = write(
        "security-agent.yaml",
        """\
        security_agent:
          cmd_port: abc
          remote_tagger: maybe
        compliance_config:
          check_interval: often
        log_file_max_size: huge
        tags:
          key: value
        """,
    )
    config = load_config([path], env={})
    checks = [
        (config.get_int, "security_agent.cmd_port", "2", "expected an integer, got 'abc'"),
        (
            config.get_bool,
            "security_agent.remote_tagger",
            "3",
            "expected a boolean (true or false), got 'maybe'",
        ),
        (
            config.get_duration,
            "compliance_config.check_interval",
            "5",
            "expected a duration such as 10s, 500ms or 1h30m, got 'often'",
        ),
        (
            config.get_size,
            "log_file_max_size",
            "6",
            "expected a size in bytes such as 10MB, 512KB or 100, got 'huge'",
        ),
        (config.get_list, "tags", "7", "expected a list, got {'key': 'value'}"),
        (config.get_str, "tags", "7", "expected a string, got {'key': 'value'}"),
    ]
    for getter, key, line, problem in checks:
        with pytest.raises(ConfigError) as caught:
            getter(key)
        assert str(caught.value) == f"{path}:{line}: {key}: {problem}"


def test_absurdly_deep_nesting_is_a_config_error(write):
    path = write("security-agent.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config([path], env={})
    assert str(caught.value) == f"{path}: invalid YAML: nested too deeply"


def test_merge_keys_and_anchors_are_honoured(write):
    path = write(
        "security-agent.yaml",
        """\
        base: &base
          enabled: true
          batch_wait: 5
        compliance_config:
          endpoints:
            <<: *base
            batch_wait: 10
        """,
    )
    config = load_config([path], env={})
    assert config.get("compliance_config.endpoints") == {"enabled": True, "batch_wait": 10}
    assert config.origin("compliance_config.endpoints.batch_wait") == f"{path}:7"


def test_keys_keep_the_text_they_were_written_with(write):
    path = write("security-agent.yaml", "1: a\nyes: b\n")
    assert load_config([path], env={}).as_dict() == {"1": "a", "yes": "b"}


def test_permission_denied_suggests_running_as_the_agent_user(tmp_path, run_as_nobody):
    directory = tmp_path / "etc"
    directory.mkdir()
    (directory / "security-agent.yaml").write_text("a: 1\n")
    os.chmod(directory / "security-agent.yaml", 0)
    output = run_as_nobody(directory, lambda: load_config(["security-agent.yaml"], env={}))
    assert output == (
        "ConfigError: cannot access the config file security-agent.yaml (Permission denied); "
        "try running the command under the same user as the security agent"
    )


def test_nobody_can_read_a_world_readable_file_in_that_directory(tmp_path, run_as_nobody):
    # Guards the test above: nobody can read a world-readable file there, so the error really
    # comes from the file mode and not from the directory.
    directory = tmp_path / "etc"
    directory.mkdir()
    (directory / "security-agent.yaml").write_text("a: 1\n")
    os.chmod(directory / "security-agent.yaml", 0o644)
    output = run_as_nobody(directory, lambda: load_config(["security-agent.yaml"], env={}))
    assert output == "no error"
