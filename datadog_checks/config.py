"""Legacy import path ``datadog_checks.config``."""

from __future__ import annotations

from datadog_checks.base.config import _is_affirmative, is_affirmative

__all__ = ["_is_affirmative", "is_affirmative"]
