"""Hiding secrets in what leaves the agent: flares, ``GET /agent/config``, logs shown to users.

A library package (no entry point): plugins import it. It follows the rules of Datadog's agent
scrubber (``pkg/util/scrubber``, 7.78): API keys (32 hex characters) and APP keys (40 hex, or
``ddapp_...``) keep their last 4 characters, bearer tokens, passwords in URLs, values of
password-, token-, secret- and key-like YAML keys, SNMP community strings and PEM blocks are
replaced by ``********``; comment lines are dropped from text. See :mod:`plugins.scrubber.rules`.

The module-level functions use a fresh default :class:`Scrubber` each call (the compiled rules
are shared and immutable); build a :class:`Scrubber` to add keys or patterns::

    from plugins.scrubber import scrub_yaml, Scrubber
    clean = scrub_yaml(open(path).read())
"""

from __future__ import annotations

from typing import Any

from plugins.scrubber.rules import REDACTED, Rule, hide_key_except_last_chars
from plugins.scrubber.scrubber import Scrubber

__all__ = [
    "REDACTED",
    "Rule",
    "Scrubber",
    "hide_key_except_last_chars",
    "scrub_bytes",
    "scrub_data",
    "scrub_json",
    "scrub_line",
    "scrub_text",
    "scrub_yaml",
]


def scrub_text(text: str) -> str:
    """``text`` with secrets hidden, line by line; comment lines (``# ...``) are dropped."""
    return Scrubber().scrub_text(text)


def scrub_line(line: str) -> str:
    """One line (a URL, a log message) through the single-line rules."""
    return Scrubber().scrub_line(line)


def scrub_bytes(data: bytes) -> bytes:
    """:func:`scrub_text` on bytes read as UTF-8; undecodable bytes pass through; never raises."""
    return Scrubber().scrub_bytes(data)


def scrub_yaml(text: str) -> str:
    """Parse, hide sensitive values at any depth, re-dump, scrub the text; unparsable YAML
    goes through :func:`scrub_text`."""
    return Scrubber().scrub_yaml(text)


def scrub_json(text: str) -> str:
    """Parse JSON, hide sensitive values, dump it with 2-space indents; else :func:`scrub_text`."""
    return Scrubber().scrub_json(text)


def scrub_data(obj: Any) -> Any:
    """A copy of nested dicts/lists with sensitive values hidden; strings go through the text
    rules (comment lines kept)."""
    return Scrubber().scrub_data(obj)
