"""The scrubbing rules: what Datadog's agent scrubber (``pkg/util/scrubber``, 7.78) hides.

A :class:`Rule` works on text (``pattern`` plus ``replacement``), on parsed data (``key`` plus
``process_value``: the value under a mapping key the ``key`` pattern matches is replaced), or
both. The default tables below keep Datadog's order, which matters: an earlier rule's output is
what a later rule sees (the 64-hex bearer rule keeps the last five characters, so the generic
bearer rule, which stops at ``*``, leaves it alone).

Patterns use ``re.ASCII`` so that ``\\b``, ``\\w`` and ``\\s`` mean what they mean in Go's RE2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REDACTED = "********"
"""What a hidden value becomes (Datadog's ``defaultReplacement``)."""

Replacement = str | Callable[[re.Match[str]], str]
Recurse = Callable[[Any], Any]
ValueProcessor = Callable[[Any, Recurse], Any]
"""``process_value(value, recurse)``: ``recurse`` scrubs nested data with the same scrubber."""

_FLAGS = re.ASCII
_HEX = "[a-fA-F0-9]"
_KEY_CHARS = r"(?:\w|-)*"  # what may surround a key part in a YAML key (Datadog: (\w|_|-)*)
# Where a match may start. Python's backtracking engine, unlike Go's RE2, would retry a
# failing pattern from every character of a long word or blank run (quadratic time on long
# log lines); a match found from inside a run is also found from its start, which is the
# leftmost one anyway, so requiring the start changes no result.
_LINE_SPACE = r"(?<!\s)\s*"
_KEY_START = r"(?<![\w-])"


@dataclass(frozen=True)
class Rule:
    """One replacement; immutable so rule tables can be shared between scrubbers.

    ``hints``: when given, the text rule runs on a line only if one of them occurs in it (a
    cheap guard for broad patterns); ``required`` substrings must all occur.
    ``replacement`` uses :func:`re.sub` syntax (``\\g<1>``) or is a function of the match.
    ``key`` matches mapping keys in parsed YAML/JSON (``re.search``); ``process_value`` turns
    the value found there into its replacement (default: ``REDACTED``).
    """

    name: str
    pattern: re.Pattern[str] | None = None
    replacement: Replacement = REDACTED
    hints: tuple[str, ...] = ()
    key: re.Pattern[str] | None = None
    process_value: ValueProcessor | None = None
    required: tuple[str, ...] = ()
    """Substrings that must all occur for the text rule to run (cheaper than failing)."""

    def applies_to(self, text: str) -> bool:
        """Whether the text rule should run on ``text``: one of its hints and all of its
        required substrings occur in it."""
        return (
            self.pattern is not None
            and (not self.hints or any(hint in text for hint in self.hints))
            and all(part in text for part in self.required)
        )

    def apply(self, text: str) -> str:
        """Run the text rule on ``text`` (hints are the caller's business)."""
        if self.pattern is None:
            return text
        return self.pattern.sub(self.replacement, text)

    def replace_value(self, value: Any, recurse: Recurse) -> Any:
        """The replacement of ``value`` found under a key this rule's ``key`` matches."""
        if self.process_value is not None:
            return self.process_value(value, recurse)
        return REDACTED


def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, _FLAGS | flags)


def visible_key_chars(length: int) -> int:
    """How many trailing characters of a key of ``length`` characters stay visible.

    None up to 4, then one more per doubling of the length, at most 4: 5-7 show 1, 8-15
    show 2, 16-31 show 3, 32 and more show 4.
    """
    if length <= 4:
        return 0
    return max(1, min(4, length.bit_length() - 2))


def hide_key_except_last_chars(key: str) -> str:
    """``key`` with all but its last few characters as ``*`` (see :func:`visible_key_chars`).

    A key of 4 characters or fewer becomes :data:`REDACTED` whole: its length would tell too
    much.
    """
    shown = visible_key_chars(len(key))
    if shown == 0:
        return REDACTED
    return "*" * (len(key) - shown) + key[-shown:]


def is_encrypted_placeholder(value: str) -> bool:
    """``ENC[...]`` values are secret-backend handles, not secrets: flares keep them."""
    stripped = value.strip()
    return stripped.startswith("ENC[") and stripped.endswith("]")


def _hide_api_or_app_key(value: Any, recurse: Recurse) -> Any:
    # Keep a key's tail so support can tell which key is configured without seeing it.
    if isinstance(value, str):
        stripped = value.strip()
        return hide_key_except_last_chars(stripped) if stripped else ""
    return REDACTED


def _hide_all_leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _hide_all_leaves(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hide_all_leaves(v) for v in value]
    if value is None:
        return None  # an absent value must not turn into "********" on a round trip
    if isinstance(value, str) and is_encrypted_placeholder(value):
        return value
    return REDACTED


def _yaml_replacement() -> str:
    return r'\g<1> "' + REDACTED + '"'


def yaml_key_rule(name: str, key: str, hints: tuple[str, ...]) -> Rule:
    """Hide the value of a YAML line whose key is exactly ``key`` (a regex alternation)."""
    return Rule(
        name,
        _compile(rf"({_LINE_SPACE}{key}\s*:).+"),
        _yaml_replacement(),
        hints,
        _compile(rf"^{key}$"),
    )


def _yaml_key_part_rule(name: str, part: str, hints: tuple[str, ...]) -> Rule:
    # The key only has to contain ``part``: db_password, passwd, mysql_pwd_file...
    return Rule(
        name,
        # The lookahead finds the part, then the whole key is taken at once: trying each
        # occurrence of the part in turn would be quadratic ("passpass...pass").
        _compile(rf"({_LINE_SPACE}{_KEY_START}(?=[\w-]*?{part}){_KEY_CHARS}+\s*:).+"),
        _yaml_replacement(),
        hints,
        _compile(part),
    )


def _yaml_key_ending_rule(name: str, ending: str, hints: tuple[str, ...]) -> Rule:
    return Rule(
        name,
        _compile(rf"(^\s*{_KEY_CHARS}{ending}\s*:).+"),
        _yaml_replacement(),
        hints,
        _compile(rf"^.*{ending}$"),
    )


def _yaml_header_rule(name: str, suffix: str, hints: tuple[str, ...]) -> Rule:
    # HTTP-header-like keys: x-api-key, x-vault-token, x-auth, x-api-secret...
    return Rule(
        name,
        _compile(rf"({_LINE_SPACE}x-{_KEY_CHARS}{suffix}\s*:).+"),
        _yaml_replacement(),
        hints,
        _compile(rf"^x-.*{suffix}$"),
    )


_PASSWORD_VALUE = r"[0-9A-Za-z#!$%&()*+,\-./:<=>?@\[\\\]^_{|}~]+"


def default_line_rules() -> tuple[Rule, ...]:
    """The single-line rules, in the order Datadog applies them."""
    return (
        Rule(
            "hinted api key",
            _compile(r"(api_?key=)\b[a-zA-Z0-9]+([a-zA-Z0-9]{4})\b"),
            r"\g<1>" + "*" * 28 + r"\g<2>",
            ("api_key", "apikey"),
        ),
        Rule(
            "hinted app key",
            _compile(r"(ap(?:p|plication)_?key=)\b[a-zA-Z0-9]+([a-zA-Z0-9]{4})\b"),
            r"\g<1>" + "*" * 36 + r"\g<2>",
            ("app_key", "appkey", "application_key"),
        ),
        Rule(
            "prefixed app key",
            _compile(r"ddapp_[a-zA-Z0-9_]{30}([a-zA-Z0-9_]{4})"),
            "*" * 36 + r"\g<1>",
            ("ddapp_",),
        ),
        Rule(
            "bearer 64 hex",
            _compile(rf"\bBearer {_HEX}{{59}}({_HEX}{{5}})\b"),
            "Bearer " + "*" * 59 + r"\g<1>",
            ("Bearer",),
        ),
        Rule("bearer", _compile(r"\bBearer\s+[^*]+\b"), "Bearer " + REDACTED, ("Bearer",)),
        _yaml_header_rule(
            "x- key header",
            "key",
            (
                "x-api-key",
                "x-dreamfactory-api-key",
                "x-functions-key",
                "x-lz-api-key",
                "x-octopus-apikey",
                "x-pm-partner-key",
                "x-rapidapi-key",
                "x-sungard-idp-api-key",
                "x-vtex-api-appkey",
                "x-seel-api-key",
                "x-goog-api-key",
                "x-sonar-passcode",
            ),
        ),
        _yaml_header_rule(
            "x- token header",
            "token",
            (
                "x-auth-token",
                "x-rundeck-auth-token",
                "x-consul-token",
                "x-datadog-monitor-token",
                "x-vault-token",
                "x-vtex-api-apptoken",
                "x-static-token",
            ),
        ),
        _yaml_header_rule("x- auth header", "auth", ("x-auth", "x-stratum-auth")),
        _yaml_header_rule(
            "x- secret header",
            "secret",
            ("x-api-secret", "x-ibm-client-secret", "x-chalk-client-secret"),
        ),
        _exact_keys_rule(),
        _yaml_key_ending_rule("private key", "private_key", ("private_key",)),
        Rule(
            "yaml api key",
            _compile(rf"(\-|\:|,|\[|\{{)(\s+)?\b{_HEX}{{28}}({_HEX}{{4}})\b"),
            r'\g<1>\g<2>"' + "*" * 28 + r'\g<3>"',
        ),
        Rule("api key", _compile(rf"\b{_HEX}{{28}}({_HEX}{{4}})\b"), "*" * 28 + r"\g<1>"),
        Rule(
            "yaml app key",
            _compile(rf"(\-|\:|,|\[|\{{)(\s+)?\b{_HEX}{{36}}({_HEX}{{4}})\b"),
            r'\g<1>\g<2>"' + "*" * 36 + r'\g<3>"',
        ),
        Rule("app key", _compile(rf"\b{_HEX}{{36}}({_HEX}{{4}})\b"), "*" * 36 + r"\g<1>"),
        Rule(
            "remote config key", _compile(r"\bDDRCM_[A-Z0-9]+([A-Z0-9]{5})\b"), "*" * 35 + r"\g<1>"
        ),
        Rule(
            "uri password",
            _compile(r'([a-z][a-z0-9+-.]+://|\b)([^:\s]++):([^\s|"]+)@', re.IGNORECASE),
            r"\g<1>\g<2>:" + REDACTED + "@",
            # What any match contains; spares the scan from every word boundary, which is
            # quadratic on a long token, on nearly every line.
            required=(":", "@"),
        ),
        _yaml_key_part_rule("yaml password", "(?:pass(?:word)?|pwd)", ("pass", "pwd")),
        Rule(
            "password",
            _compile(
                r"([\"']?(?:pass(?:word)?|pswd|pwd)[\"']?)((?:=| = |: )[\"']?)("
                + _PASSWORD_VALUE
                + ")",
                re.IGNORECASE,
            ),
            r"\g<1>\g<2>" + REDACTED,
        ),
        _yaml_key_ending_rule("token", "_?(?:token|jwt)", ("token", "jwt")),
        yaml_key_rule("consumer key", "(?:consumer_key|token_id)", ("consumer_key", "token_id")),
        _yaml_key_ending_rule("secret", "_secret(?:_id)?", ("secret", "secret_id")),
        _yaml_key_ending_rule("access key", "access_key", ("access_key",)),
        yaml_key_rule(
            "snmp and authorization",
            "(?:community_string|auth_?[Kk]ey|priv_?[Kk]ey|community|authentication_key"
            "|privacy_key|Authorization|authorization)",
            (
                "community_string",
                "authKey",
                "authkey",
                "auth_key",
                "privKey",
                "privkey",
                "priv_key",
                "community",
                "authentication_key",
                "privacy_key",
                "Authorization",
                "authorization",
            ),
        ),
        # The next three only work on parsed data (scrub_yaml, scrub_data, scrub_json).
        Rule("api key value", key=_compile(r"api[-_]?key"), process_value=_hide_api_or_app_key),
        Rule(
            "app key value",
            key=_compile(r"ap(?:p|plication)[-_]?key"),
            process_value=_hide_api_or_app_key,
        ),
        Rule(
            "additional endpoints",
            key=_compile(r"^additional_endpoints$"),
            process_value=_scrub_additional_endpoints,
        ),
    )


def _exact_keys_rule() -> Rule:
    keys = (
        "auth-tenantid",
        "authority",
        "cainzapp-api-key",
        "cms-svc-api-key",
        "dd-api-key",
        "lodauth",
        "sec-websocket-key",
        "statuskey",
        "cookie",
        "private-token",
        "kong-admin-token",
        "accesstoken",
        "session_token",
    )
    return yaml_key_rule("exact keys", "(?:" + "|".join(keys) + ")", keys)


def _scrub_additional_endpoints(value: Any, recurse: Recurse) -> Any:
    """``additional_endpoints`` comes in two shapes.

    A mapping of endpoint URL to API keys: every leaf is hidden. A list of endpoint mappings
    (``logs_config``): each is scrubbed like any data, so ``api_key`` is hidden and ``host`` and
    ``port`` stay readable.
    """
    if isinstance(value, dict):
        return _hide_all_leaves(value)
    if isinstance(value, list | tuple):
        return recurse(list(value))
    return value


def default_multiline_rules() -> tuple[Rule, ...]:
    """Rules that see the whole text: lists of SNMP community strings, PEM blocks."""
    return (
        Rule(
            "community strings",
            # The key, then either indented "- item" lines or a [...] list over any lines.
            _compile(rf"({_LINE_SPACE}community_strings\s*:)\s*(?:\n(?:\s+-\s+.*)*|\[[^\]]*\])"),
            _yaml_replacement(),
            ("community_strings",),
            _compile(r"^community_strings$"),
        ),
        Rule(
            "pem block",
            # Datadog's labels are greedy ".*"; ours end at the first "-----" of the line, for
            # good (atomic group), which hides the same key material without retrying every
            # "-----" after every BEGIN (cubic time on a long log line full of them).
            _compile(r"-----BEGIN (?>[^\n]*?-----)[A-Za-z0-9=+/\s]*+-----END [^\n]*?-----"),
            REDACTED,
            ("BEGIN",),
        ),
        Rule(
            # Ours: a private key with headers (legacy encrypted PEM: "Proc-Type: 4,ENCRYPTED")
            # has characters the block pattern refuses; hide up to its END line all the same.
            "pem private key with headers",
            _compile(
                r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----(?:(?!-----BEGIN )[\s\S])*?"
                r"-----END \1-----"
            ),
            REDACTED,
            ("PRIVATE KEY",),
        ),
    )
