"""scrub_yaml, scrub_json, scrub_data, scrub_bytes and extending a Scrubber."""

from __future__ import annotations

import json

import pytest
import yaml

import plugins.scrubber as scrubber_module
from plugins.scrubber import (
    REDACTED,
    Scrubber,
    hide_key_except_last_chars,
    scrub_bytes,
    scrub_data,
    scrub_json,
    scrub_line,
    scrub_text,
    scrub_yaml,
)

API = "aaaabbbbccccddddeeeeffff00001111"

CONFIG = f"""\
# api_key: {API}  (a comment: dropped)
api_key: {API}
app_key: short
site: datadoghq.eu
run_path: /var/lib/security-agent/run
proxy:
  https: http://bob:hunter2@proxy.corp:3128
  no_proxy: [localhost]
database:
  connections:
    - host: db1
      password: "multi word password"
      options: {{auth_token: abc, timeout: 5}}
    - host: db2
      password: 12345
custom:
  client_secret: {{nested: value}}
  user_secret_id: id-1
  my_access_key: AKIA
  token: null
additional_endpoints:
  "https://app.datadoghq.com": [key1, key2]
  "https://other.example": ["ENC[vault:key]"]
logs_config:
  additional_endpoints:
    - host: intake.example
      port: 443
      api_key: abcdefghijklmnopqrstuvwxyz
tls_cert: |
  -----BEGIN PRIVATE KEY-----
  MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
  -----END PRIVATE KEY-----
"""


def test_scrub_yaml_hides_sensitive_values_at_any_depth():
    result = scrub_yaml(CONFIG)
    assert yaml.safe_load(result) == {
        "api_key": "*" * 28 + "1111",
        "app_key": "*" * 4 + "t",
        "site": "datadoghq.eu",
        "run_path": "/var/lib/security-agent/run",
        "proxy": {"https": "http://bob:********@proxy.corp:3128", "no_proxy": ["localhost"]},
        "database": {
            "connections": [
                {
                    "host": "db1",
                    "password": REDACTED,
                    "options": {"auth_token": REDACTED, "timeout": 5},
                },
                {"host": "db2", "password": REDACTED},
            ]
        },
        "custom": {
            "client_secret": REDACTED,
            "user_secret_id": REDACTED,
            "my_access_key": REDACTED,
            "token": REDACTED,
        },
        "additional_endpoints": {
            "https://app.datadoghq.com": [REDACTED, REDACTED],
            "https://other.example": ["ENC[vault:key]"],
        },
        "logs_config": {
            "additional_endpoints": [
                {"host": "intake.example", "port": 443, "api_key": "*" * 23 + "xyz"}
            ]
        },
        "tls_cert": REDACTED + "\n",
    }
    for secret in ("hunter2", "multi word", "12345", "AKIA", "key1", "MIIEvQ", "bbbbcccc"):
        assert secret not in result


def test_scrub_yaml_keeps_key_order():
    result = scrub_yaml("zeta: 1\npassword: x\nalpha: 2\n")
    assert result == 'zeta: 1\npassword: "********"\nalpha: 2\n'


@pytest.mark.parametrize(
    "text",
    [
        "password: [unclosed\napi_key: " + API + "\n",  # not YAML
        "key: value\n\tbad: tab\n",  # tabs are not YAML indentation
    ],
)
def test_unparsable_yaml_falls_back_to_text(text):
    assert scrub_yaml(text) == scrub_text(text)


def test_yaml_that_is_not_a_mapping_is_scrubbed_as_text_and_keeps_its_form():
    text = "just a line with Bearer abcdef\n"
    assert scrub_yaml(text) == "just a line with Bearer ********\n"
    assert scrub_yaml("") == ""


def test_scrub_data_returns_a_scrubbed_copy():
    data = {
        "api_key": API,
        "nested": [{"password": {"deep": 1}}, ("url http://u:pw@h", 3)],
        7: "api_key=abcdefgh1234",
        "plain": None,
    }
    original = repr(data)
    result = scrub_data(data)
    assert result == {
        "api_key": "*" * 28 + "1111",
        "nested": [{"password": REDACTED}, ["url http://u:********@h", 3]],
        7: "api_key=" + "*" * 28 + "1234",
        "plain": None,
    }
    assert data["api_key"] == API  # the input is not changed
    assert repr(data) == original


def test_scrub_data_keeps_comment_lines_of_strings():
    assert scrub_data({"channel": "#ops"}) == {"channel": "#ops"}


def test_scrub_json_parses_and_redumps():
    text = json.dumps({"config": {"api_key": API, "dd_url": "https://u:p@x", "auth_token": 5}})
    assert json.loads(scrub_json(text)) == {
        "config": {
            "api_key": "*" * 28 + "1111",
            "dd_url": "https://u:********@x",
            "auth_token": REDACTED,
        }
    }
    assert scrub_json('{"password": broken') == '{"password": ********'


def test_scrub_bytes_never_raises_on_invalid_utf8():
    data = b"\xff\xfe password: hunter2 \xc3\n" + API.encode() + b"\n"
    assert scrub_bytes(data) == b'\xff\xfe password: "********"\n' + b"*" * 28 + b"1111\n"


def test_comment_and_blank_lines():
    text = "a: 1\n\n  # password: hunter2\n   \nb: 2\n"
    assert scrub_text(text) == "a: 1\n\n   \nb: 2\n"


def test_scrub_line_keeps_comments():
    assert scrub_line("# token=x Bearer abc") == "# token=x Bearer ********"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", REDACTED),
        ("abcd", REDACTED),
        ("abcde", "****e"),
        ("abcdefg", "******g"),
        ("abcdefgh", "******gh"),
        ("a" * 15 + "z", "*" * 13 + "aaz"),
        ("a" * 31, "*" * 28 + "aaa"),
        ("a" * 28 + "wxyz", "*" * 28 + "wxyz"),
        ("a" * 60 + "wxyz", "*" * 60 + "wxyz"),
    ],
)
def test_hide_key_except_last_chars(key, expected):
    assert hide_key_except_last_chars(key) == expected


def test_add_key_and_add_pattern_change_only_that_scrubber():
    custom = Scrubber()
    custom.add_key("vault_role_id")
    custom.add_key("api_key")  # ignored: its own rule keeps the last characters
    custom.add_pattern(r"(sk_live_)[A-Za-z0-9]+", r"\g<1>" + REDACTED, hints=["sk_live_"])
    text = f"vault_role_id: r-123\nstripe sk_live_abc123\napi_key: {API}\n"
    assert custom.scrub_text(text) == (
        'vault_role_id: "********"\nstripe sk_live_********\napi_key: "' + "*" * 28 + '1111"\n'
    )
    assert custom.scrub_data({"vault_role_id": "r-123"}) == {"vault_role_id": REDACTED}
    # The defaults, and a new Scrubber, are untouched.
    assert scrub_text("vault_role_id: r-123") == "vault_role_id: r-123"
    assert Scrubber().scrub_text("stripe sk_live_abc123") == "stripe sk_live_abc123"


def test_add_key_escapes_the_name_and_refuses_empty():
    custom = Scrubber()
    custom.add_key("my.key")
    assert custom.scrub_text("my.key: v\nmyXkey: v") == 'my.key: "********"\nmyXkey: v'
    with pytest.raises(ValueError, match=r"^a key to scrub must not be empty$"):
        custom.add_key("")


def test_module_has_no_mutable_default_scrubber():
    public = {name: getattr(scrubber_module, name) for name in scrubber_module.__all__}
    assert not any(isinstance(value, Scrubber) for value in public.values())
    assert not any(isinstance(value, Scrubber) for value in vars(scrubber_module).values())


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Lines that made a naive port of Datadog's patterns retry from every character
        # (quadratic or worse in Python's backtracking engine): they must scrub like short ones.
        ("a" * 20000 + "pass" + "b" * 20000, "a" * 20000 + "pass" + "b" * 20000),
        ("pass" * 10000 + ": x", "pass" * 10000 + ': "********"'),
        ("-----BEGIN " * 10000, "-----BEGIN " * 10000),
        ("a@" * 10000, "a@" * 10000),
        (" " * 20000 + "cookie: c", " " * 20000 + 'cookie: "********"'),
        ("-----BEGIN RSA PRIVATE KEY-----\n" * 5000, "-----BEGIN RSA PRIVATE KEY-----\n" * 5000),
    ],
    ids=["word with pass", "repeated pass", "repeated BEGIN", "repeated @", "blanks", "no END"],
)
def test_long_adversarial_lines(line, expected):
    assert scrub_text(line) == expected
