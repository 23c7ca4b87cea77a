"""The version of this SDK, shown by ``security-agent check`` next to the check name."""

from __future__ import annotations

__version__ = "0.1.0"
