"""Helpers checks commonly import from ``datadog_checks.base.utils``."""
