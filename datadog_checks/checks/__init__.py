"""Legacy import path ``datadog_checks.checks`` (rtloader imports its base class from here)."""

from __future__ import annotations

from datadog_checks.base.checks import AgentCheck, Status

__all__ = ["AgentCheck", "Status"]
