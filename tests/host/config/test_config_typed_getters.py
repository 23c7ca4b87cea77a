"""Typed getters: what each accepts, and the one-line error for what it does not."""

from __future__ import annotations

import datetime

import pytest

from host.config import Config, ConfigError, Source, load_config


def _config_with(value):
    config = Config(env={})
    config.set("key", value)
    return config


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (10, 10.0),
        (1.5, 1.5),
        ("10", 10.0),
        ("0", 0.0),
        ("500ms", 0.5),
        ("10s", 10.0),
        ("20m", 1200.0),
        ("3h", 10800.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("1.5h", 5400.0),
        ("2m30.5s", 150.5),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("100ns", 1e-07),
        ("-5s", -5.0),
        (" 10s ", 10.0),
        (None, 0.0),
    ],
)
def test_durations(value, seconds):
    assert _config_with(value).get_duration("key") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "abc", "10 s", "1h 30m", "10S", "5d", "s", "1.2.3s", "-"])
def test_bad_durations(value):
    with pytest.raises(ConfigError) as caught:
        _config_with(value).get_duration("key")
    assert str(caught.value) == (
        f"key: expected a duration such as 10s, 500ms or 1h30m, got {value!r}"
    )


@pytest.mark.parametrize("value", [True, [1], {"a": 1}])
def test_durations_refuse_non_scalars_and_booleans(value):
    with pytest.raises(ConfigError) as caught:
        _config_with(value).get_duration("key")
    assert str(caught.value) == (
        f"key: expected a duration such as 10s, 500ms or 1h30m, got {value!r}"
    )


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (100, 100),
        ("100", 100),
        ("10Mb", 10 * 1024**2),
        ("10MB", 10 * 1024**2),
        ("10mb", 10 * 1024**2),
        ("10M", 10 * 1024**2),
        ("512KB", 512 * 1024),
        ("512k", 512 * 1024),
        ("1GB", 1024**3),
        ("1.5GB", 1536 * 1024**2),
        ("2TB", 2 * 1024**4),
        ("100B", 100),
        ("10 MB", 10 * 1024**2),
        (1024.0, 1024),
        (None, 0),
    ],
)
def test_sizes(value, size):
    assert _config_with(value).get_size("key") == size


@pytest.mark.parametrize("value", ["", "huge", "10XB", "-1", "MB", -1, 1.5, True])
def test_bad_sizes(value):
    with pytest.raises(ConfigError) as caught:
        _config_with(value).get_size("key")
    assert str(caught.value) == (
        f"key: expected a size in bytes such as 10MB, 512KB or 100, got {value!r}"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("On", True),
        ("1", True),
        (1, True),
        ("false", False),
        ("No", False),
        ("off", False),
        ("0", False),
        (0, False),
        (None, False),
    ],
)
def test_booleans(value, expected):
    assert _config_with(value).get_bool("key") is expected


@pytest.mark.parametrize("value", ["maybe", "", 2, 1.0, ["true"]])
def test_bad_booleans(value):
    with pytest.raises(ConfigError) as caught:
        _config_with(value).get_bool("key")
    assert str(caught.value) == f"key: expected a boolean (true or false), got {value!r}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5010, 5010), ("5010", 5010), (" 42 ", 42), ("-1", -1), (7.0, 7), (None, 0)],
)
def test_integers(value, expected):
    assert _config_with(value).get_int("key") == expected


@pytest.mark.parametrize("value", ["abc", "", "1.5", "0x10", 1.5, True, [1]])
def test_bad_integers(value):
    with pytest.raises(ConfigError) as caught:
        _config_with(value).get_int("key")
    assert str(caught.value) == f"key: expected an integer, got {value!r}"


def test_an_integer_too_long_to_parse_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        _config_with("9" * 5000).get_int("key")
    assert str(caught.value) == "key: expected an integer, got '" + "9" * 76 + "..."


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, 1.5), (2, 2.0), ("2.5", 2.5), ("1e3", 1000.0), (".5", 0.5), (None, 0.0)],
)
def test_floats(value, expected):
    assert _config_with(value).get_float("key") == expected


@pytest.mark.parametrize("value", ["fast", "nan", "inf", "1_000", False])
def test_bad_floats(value):
    with pytest.raises(ConfigError) as caught:
        _config_with(value).get_float("key")
    assert str(caught.value) == f"key: expected a number, got {value!r}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("info", "info"),
        (5010, "5010"),
        (1.5, "1.5"),
        (True, "true"),
        (None, ""),
        (datetime.date(2024, 1, 31), "2024-01-31"),
    ],
)
def test_strings(value, expected):
    assert _config_with(value).get_str("key") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["a", 1], ["a", 1]), ("a:1  b:2", ["a:1", "b:2"]), ("", []), (None, [])],
)
def test_lists(value, expected):
    assert _config_with(value).get_list("key") == expected


def test_an_unknown_key_reads_as_the_zero_value():
    config = Config(env={})
    assert (
        config.get_str("nope"),
        config.get_int("nope"),
        config.get_float("nope"),
        config.get_bool("nope"),
        config.get_list("nope"),
        config.get_duration("nope"),
        config.get_size("nope"),
    ) == ("", 0, 0.0, False, [], 0.0, 0)


def test_errors_for_defaults_and_cli_values_name_only_the_key():
    config = Config(env={})
    config.declare("security_agent.cmd_port", "abc")
    with pytest.raises(ConfigError) as caught:
        config.get_int("security_agent.cmd_port")
    assert str(caught.value) == "security_agent.cmd_port: expected an integer, got 'abc'"
    config.set("security_agent.cmd_port", "xyz", Source.CLI)
    with pytest.raises(ConfigError) as caught:
        config.get_int("security_agent.cmd_port")
    assert str(caught.value) == "security_agent.cmd_port: expected an integer, got 'xyz'"


def test_long_values_are_cut_in_messages():
    config = _config_with("x" * 200)
    with pytest.raises(ConfigError) as caught:
        config.get_int("key")
    assert str(caught.value) == "key: expected an integer, got '" + "x" * 76 + "..."


def test_value_error_prefixes_the_origin_for_plugin_checks(write):
    path = write("security-agent.yaml", "\nmy_plugin:\n  interval: -1\n")
    config = load_config([path], env={})
    assert str(config.value_error("my_plugin.interval", "must be positive, got -1")) == (
        f"{path}:3: my_plugin.interval: must be positive, got -1"
    )


def test_config_error_is_always_one_line():
    assert str(ConfigError("first\nsecond\r\nthird")) == "first second third"
