"""The SDK custom checks import: ``from datadog_checks.base import AgentCheck``.

An API-compatible core of Datadog's ``datadog-checks-base``: the check base class, the
configuration helpers and errors, and stubs that stand in for the host in tests.
"""

from __future__ import annotations

from datadog_checks.base.__about__ import __version__
from datadog_checks.base.agent import datadog_agent
from datadog_checks.base.checks import AgentCheck
from datadog_checks.base.config import is_affirmative
from datadog_checks.base.errors import CheckException, ConfigurationError
from datadog_checks.base.utils.common import (
    ensure_bytes,
    ensure_unicode,
    to_native_string,
    to_string,
)

__all__ = [
    "AgentCheck",
    "CheckException",
    "ConfigurationError",
    "__version__",
    "datadog_agent",
    "ensure_bytes",
    "ensure_unicode",
    "is_affirmative",
    "to_native_string",
    "to_string",
]
