"""Legacy import path ``datadog_checks.errors``."""

from __future__ import annotations

from datadog_checks.base.errors import CheckException, ConfigurationError

__all__ = ["CheckException", "ConfigurationError"]
