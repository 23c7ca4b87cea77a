"""The check base class and its constants."""

from __future__ import annotations

from datadog_checks.base.checks.base import AgentCheck
from datadog_checks.base.types import ServiceCheck as Status

__all__ = ["AgentCheck", "Status"]
