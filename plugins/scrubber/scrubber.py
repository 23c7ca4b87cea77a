"""The :class:`Scrubber`: applies the rule tables to text, bytes, YAML, JSON and parsed data."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

from plugins.scrubber.rules import (
    REDACTED,
    Replacement,
    Rule,
    default_line_rules,
    default_multiline_rules,
    hide_key_except_last_chars,
    is_encrypted_placeholder,
    yaml_key_rule,
)

_COMMENT = re.compile(r"^\s*#")
# Keys Datadog's AddStrippedKeys refuses: their own rules already hide them, keeping the tail.
_KEYS_WITH_OWN_RULES = frozenset({"api_key", "app_key"})

# A "key": value pair inside a line of JSON (a log line, an API body): a JSON string key, then a
# string or scalar value. Objects and arrays as values are left to the line rules.
_JSON_PAIR = re.compile(
    r'"((?:[^"\\]|\\.)*)"(\s*:\s*)("(?:[^"\\]|\\.)*"|-?\d[\w.+-]*|true|false)', re.ASCII
)
# A YAML line "…api_key: value" with a plain value; Datadog hides such values only in parsed
# YAML, so a non-hex API key in a log line or an unparsable file would otherwise stay visible.
_YAML_API_KEY_LINE = re.compile(
    r"^(\s*(?:-\s+)?[\w-]*(?:api[-_]?key|ap(?:p|plication)[-_]?key)\s*:[ \t]*)"
    r"([\"']?)([A-Za-z0-9_\-.+/=]+)\2([ \t]*)$",
    re.ASCII,
)


@functools.cache
def _default_tables() -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    # Compiled once and shared: rules and tuples are immutable, so no scrubber can change what
    # another one (or the module-level functions) applies.
    return default_line_rules(), default_multiline_rules()


class Scrubber:
    """Hides secrets in text and data; what the flare and ``GET /agent/config`` go through.

    A new scrubber has Datadog's default rules (see :mod:`plugins.scrubber.rules`); extend it
    with :meth:`add_key` and :meth:`add_pattern`. Extensions change only this instance::

        scrubber = Scrubber()
        scrubber.add_key("vault_role_id")
        scrubber.add_pattern(r"(sk_live_)[A-Za-z0-9]+", r"\\g<1>" + REDACTED)
        clean = scrubber.scrub_yaml(raw_config)

    Text scrubbing goes line by line and, like Datadog's, drops comment lines (``# ...``):
    commented-out credentials are common in config files.
    """

    def __init__(self, *, defaults: bool = True) -> None:
        """A scrubber with Datadog's rules, or with none when ``defaults`` is false."""
        line, multiline = _default_tables() if defaults else ((), ())
        self._line_rules: tuple[Rule, ...] = line
        self._multiline_rules: tuple[Rule, ...] = multiline
        # Our additions to Datadog's text rules (JSON pairs, non-hex API keys on YAML lines)
        # come with the defaults.
        self._key_aware_lines = defaults

    # --- extending ------------------------------------------------------------------------------

    def add_key(self, name: str) -> None:
        """Hide the value of every ``name:`` YAML line and of key ``name`` in parsed data.

        ``api_key`` and ``app_key`` are ignored: their own rules already hide them while
        keeping the last characters that identify the key.
        """
        if not name:
            raise ValueError("a key to scrub must not be empty")
        if name in _KEYS_WITH_OWN_RULES:
            return
        self._line_rules += (yaml_key_rule(f"key {name}", re.escape(name), (name,)),)

    def add_pattern(
        self,
        regex: str | re.Pattern[str],
        replacement: Replacement = REDACTED,
        *,
        hints: Iterable[str] = (),
    ) -> None:
        """Replace every match of ``regex`` in each line with ``replacement``.

        ``replacement`` uses :func:`re.sub` syntax (``\\g<1>``) or is a function of the match;
        ``hints``, when given, are substrings one of which a line must contain for the pattern
        to run there. Raises ``re.error`` for an invalid pattern.
        """
        pattern = re.compile(regex) if isinstance(regex, str) else regex
        rule = Rule(f"pattern {pattern.pattern}", pattern, replacement, tuple(hints))
        self._line_rules += (rule,)

    # --- scrubbing ------------------------------------------------------------------------------

    def scrub_line(self, line: str) -> str:
        """One line through the single-line rules (no comment dropping, no PEM blocks)."""
        return self._scrub_line(line, self._line_rules)

    def scrub_text(self, text: str, *, keep_comments: bool = False) -> str:
        """``text`` with secrets hidden; comment lines are dropped unless ``keep_comments``."""
        # PEM blocks first as well as last: a line rule that masked part of a base64 line
        # would otherwise stop the block pattern (which allows no "*") from matching.
        text = self._scrub_multiline(text)
        # A hint absent from the whole text is absent from every line: skip those rules.
        active = tuple(rule for rule in self._line_rules if rule.applies_to(text))
        lines = []
        for line in text.split("\n"):
            if not keep_comments and _COMMENT.match(line):
                continue
            lines.append(self._scrub_line(line, active))
        return self._scrub_multiline("\n".join(lines))

    def scrub_bytes(self, data: bytes) -> bytes:
        """:meth:`scrub_text` on bytes; invalid UTF-8 passes through unchanged, never raises."""
        text = data.decode("utf-8", "surrogateescape")
        return self.scrub_text(text).encode("utf-8", "surrogateescape")

    def scrub_yaml(self, text: str) -> str:
        """Parse YAML, hide sensitive values at any depth, dump it, then scrub the text.

        Text that is not a YAML mapping or list (unparsable, empty, a bare scalar) goes through
        :meth:`scrub_text` instead, so nothing is lost and nothing is left unscrubbed.
        """
        try:
            data = yaml.safe_load(text)
            if not isinstance(data, dict | list):
                return self.scrub_text(text)
            dumped = yaml.safe_dump(
                self.scrub_data(data),
                default_flow_style=False,
                sort_keys=False,
                allow_unicode=True,
                width=1_000_000,  # no folding: a folded value would escape the line rules
            )
        except Exception:  # any parse or dump failure falls back to text, never to raw output
            return self.scrub_text(text)
        return self.scrub_text(dumped)

    def scrub_json(self, text: str) -> str:
        """Parse JSON, hide sensitive values, dump it indented; not JSON: :meth:`scrub_text`."""
        try:
            data = json.loads(text)
        except ValueError:
            return self.scrub_text(text)
        return json.dumps(self.scrub_data(data), indent=2, ensure_ascii=False)

    def scrub_data(self, obj: Any) -> Any:
        """A copy of nested dicts and lists with sensitive values hidden.

        A value whose (string) key a rule names is replaced (API and APP keys keep their last
        characters, ``additional_endpoints`` is handled by shape); every other string goes
        through the text rules (comment lines kept). Tuples become lists; other values are
        returned as they are.
        """
        if isinstance(obj, dict):
            result: dict[Any, Any] = {}
            for key, value in obj.items():
                rule = self._key_rule(key) if isinstance(key, str) else None
                if rule is not None:
                    result[key] = rule.replace_value(value, self.scrub_data)
                else:
                    result[key] = self.scrub_data(value)
            return result
        if isinstance(obj, list | tuple):
            return [self.scrub_data(item) for item in obj]
        if isinstance(obj, str):
            return self.scrub_text(obj, keep_comments=True)
        return obj

    # --- internals ------------------------------------------------------------------------------

    def _key_rule(self, key: str) -> Rule | None:
        for rule in (*self._line_rules, *self._multiline_rules):
            if rule.key is not None and rule.key.search(key):
                return rule
        return None

    def _scrub_line(self, line: str, rules: tuple[Rule, ...]) -> str:
        for rule in rules:
            if rule.applies_to(line):
                line = rule.apply(line)
        if not self._key_aware_lines:
            return line
        if '"' in line:
            line = _JSON_PAIR.sub(self._json_pair, line)
        if "key" in line:
            line = _YAML_API_KEY_LINE.sub(_hide_yaml_api_key, line)
        return line

    def _scrub_multiline(self, text: str) -> str:
        for rule in self._multiline_rules:
            if rule.applies_to(text):
                text = rule.apply(text)
        return text

    def _json_pair(self, match: re.Match[str]) -> str:
        key_text, separator, value_text = match.group(1, 2, 3)
        try:
            key = json.loads(f'"{key_text}"')
            value = json.loads(value_text)
        except ValueError:
            return match.group(0)
        rule = self._key_rule(key)
        if rule is None:
            return match.group(0)
        replaced = rule.replace_value(value, self.scrub_data)
        if not isinstance(replaced, str):
            replaced = REDACTED
        return f'"{key_text}"{separator}{json.dumps(replaced, ensure_ascii=False)}'


def _hide_yaml_api_key(match: re.Match[str]) -> str:
    prefix, _quote, value, trailing = match.group(1, 2, 3, 4)
    if is_encrypted_placeholder(value):
        return match.group(0)
    return f'{prefix}"{hide_key_except_last_chars(value)}"{trailing}'
