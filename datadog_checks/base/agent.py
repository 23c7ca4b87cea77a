"""How the SDK reaches the host: the builtin modules, or the stubs when there is no host.

rtloader (and the ``checks`` plugin of this project) provide ``aggregator``,
``datadog_agent``, ``_util`` and ``tagger`` as importable modules; upstream's base imports
them once and falls back to in-process stubs. We look them up on every use instead, so a
check module imported before a host installed its modules (a test session, a REPL) still
reaches the host once it is there. :data:`AGENT_RUNNING` tells which side answered.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

_STUB_MODULES = {
    "aggregator": "datadog_checks.base.stubs.aggregator",
    "datadog_agent": "datadog_checks.base.stubs.datadog_agent",
    "_util": "datadog_checks.base.stubs._util",
    "tagger": "datadog_checks.base.stubs.tagging",
}


# Names whose import already failed in this process: a failed import searches all of
# sys.path, far too slow to repeat on every submission. A host puts its modules straight into
# sys.modules, which is looked at first, so this cache never hides a host.
_NOT_IMPORTABLE: set[str] = set()


def builtin(name: str) -> Any:
    """The host's builtin module ``name`` when a host installed it, else the SDK's stub."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    if name not in _NOT_IMPORTABLE:
        try:
            return importlib.import_module(name)
        except ImportError:
            _NOT_IMPORTABLE.add(name)
    return getattr(importlib.import_module(_STUB_MODULES[name]), name)


def agent_running() -> bool:
    """Whether a host provides the builtin modules (``aggregator`` is the witness)."""
    return isinstance(sys.modules.get("aggregator"), ModuleType)


class _BuiltinProxy:
    """Forwards attribute access to the current builtin module (or stub) of one name."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(builtin(self._name), attribute)

    def __repr__(self) -> str:
        return f"<builtin proxy {self._name!r} -> {builtin(self._name)!r}>"


aggregator = _BuiltinProxy("aggregator")
datadog_agent = _BuiltinProxy("datadog_agent")
tagger = _BuiltinProxy("tagger")


def __getattr__(name: str) -> Any:
    # ``from datadog_checks.base.agent import AGENT_RUNNING`` is evaluated when asked.
    if name == "AGENT_RUNNING":
        return agent_running()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
