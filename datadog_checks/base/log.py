"""Check logging: a ``trace`` level and, under a host, records sent to ``datadog_agent.log``."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from datadog_checks.base.agent import agent_running, builtin

if TYPE_CHECKING:
    from datadog_checks.base.checks.base import AgentCheck

TRACE_LEVEL = 7
logging.addLevelName(TRACE_LEVEL, "TRACE")

_HANDLER_LOGGER = "datadog_checks"


class CheckLoggingAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Stamps every record with the check's id so the host can say which instance logged it."""

    def __init__(self, logger: logging.Logger, check: AgentCheck) -> None:
        super().__init__(logger, {})
        self.check = check

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("_check_id", self.check.check_id or self.check.name)
        kwargs["extra"] = extra
        return msg, kwargs

    def trace(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(TRACE_LEVEL, msg, *args, **kwargs)


class AgentLogHandler(logging.Handler):
    """Formats ``"<check_id> | (<file>:<line>) | <message>"`` and hands it to the host."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            check_id = getattr(record, "_check_id", record.name)
            text = f"{check_id} | ({record.filename}:{record.lineno}) | {record.getMessage()}"
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            builtin("datadog_agent").log(text, record.levelno)
        except Exception:
            self.handleError(record)


def init_logging() -> None:
    """Route check logs to the host once a host is there (idempotent)."""
    if not agent_running():
        return
    logger = logging.getLogger(_HANDLER_LOGGER)
    if any(isinstance(h, AgentLogHandler) for h in logger.handlers):
        return
    logger.addHandler(AgentLogHandler())
    logger.propagate = False
    level = builtin("datadog_agent").get_config("log_level")
    if isinstance(level, str) and level.upper() in logging.getLevelNamesMapping():
        logger.setLevel(level.upper())
    elif isinstance(level, str) and level.lower() == "trace":
        logger.setLevel(TRACE_LEVEL)
    else:
        logger.setLevel(logging.INFO)
