"""Logging set-up for the agent: twisted.logger observers with a level that can change live.

Everything in the agent logs through :class:`twisted.logger.Logger`; this module only decides
where events go and what they look like. One :class:`LogControl` owns the observers it makes
(console and/or a size-rotated file), and :meth:`LogControl.set_level` changes what all of
them let through at once, which is what the runtime ``log_level`` setting calls.

Two line formats:

* text, Datadog's layout with the Twisted namespace where Datadog prints the Go source file::

      2026-11-24 05:00:00 UTC | SECURITY | INFO | (host.scheduler) | plugin compliance started

* JSON, one flat object per line (for log shippers), with the event's own fields beside the
  fixed ones so ``log.info("ran {plugin}", plugin="x", duration_ms=12)`` is searchable by
  ``plugin`` and ``duration_ms``.

Twisted's own ``jsonFileLogObserver`` is deliberately not used: it writes record-separator
prefixed, template-style records that shippers do not understand.

Libraries that log through the standard library reach the same observers through
:func:`bridge_stdlib_logging`.

Typical use by ``security-agent start``::

    control = LogControl(level=config.log_level, file_path=config.log_file)
    control.begin()
    if control.file_error is not None:
        log.warn("{error}; logging to the console only", error=control.file_error)
    remove_bridge = bridge_stdlib_logging()

Under ``twistd``/``twist``, which begin logging themselves, call :meth:`LogControl.attach`
instead of :meth:`LogControl.begin`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, Protocol, TextIO

from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogBeginner,
    LogEvent,
    Logger,
    LogLevel,
    LogPublisher,
    PredicateResult,
    formatEvent,
    globalLogBeginner,
    globalLogPublisher,
)
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile
from zope.interface import implementer

LEVELS: tuple[str, ...] = ("trace", "debug", "info", "warn", "error", "critical", "off")
"""Datadog's level names, least to most severe, then ``off``."""

_ALIASES: Mapping[str, str] = MappingProxyType({"warning": "warn"})

# Twisted's level constants, least severe first, under names mypy sees as LogLevel (the
# constants themselves come from an untyped library) and in an order we own, since Twisted's
# ordering helper is private.
_SEVERITY: tuple[LogLevel, ...] = (
    LogLevel.debug,
    LogLevel.info,
    LogLevel.warn,
    LogLevel.error,
    LogLevel.critical,
)
_DEBUG, _INFO, _WARN, _ERROR, _CRITICAL = _SEVERITY

_LEVEL_NAMES: Mapping[LogLevel, str] = MappingProxyType(
    {_DEBUG: "debug", _INFO: "info", _WARN: "warn", _ERROR: "error", _CRITICAL: "critical"}
)

# Twisted has no trace level, so trace and debug both open the gate at debug; the control
# still remembers which one was set so the setting reads back unchanged.
_THRESHOLDS: Mapping[str, LogLevel | None] = MappingProxyType(
    {
        "trace": _DEBUG,
        "debug": _DEBUG,
        "info": _INFO,
        "warn": _WARN,
        "error": _ERROR,
        "critical": _CRITICAL,
        "off": None,
    }
)

# Checked from most severe down; anything below INFO is debug.
_FROM_STDLIB: tuple[tuple[int, LogLevel], ...] = (
    (logging.CRITICAL, _CRITICAL),
    (logging.ERROR, _ERROR),
    (logging.WARNING, _WARN),
    (logging.INFO, _INFO),
)

_LEGACY_NAMESPACE = "log_legacy"
# twisted.python.log events carry these old-style keys; their content is already in
# message, level and traceback, so repeating them would only add noise.
_LEGACY_KEYS = frozenset({"message", "isError", "time", "format", "failure", "why", "logLevel"})

_LOG_FILE_MODE = 0o600
_LOG_DIR_MODE = 0o755

STDERR: Literal["stderr"] = "stderr"
"""Default ``console`` of :class:`LogControl`: whatever ``sys.stderr`` is when a line is written.

Looked up per line rather than bound at import, so a replaced ``sys.stderr`` (test capture,
a daemon redirect) is followed.
"""


def parse_level(name: str) -> str:
    """Return the Datadog level name for ``name``, case-insensitively; ``warning`` means ``warn``.

    :raises ValueError: for anything else, with a message listing the valid names.
    """
    normalised = name.strip().lower()
    normalised = _ALIASES.get(normalised, normalised)
    if normalised not in LEVELS:
        valid = ", ".join(LEVELS[:-1]) + " and " + LEVELS[-1]
        raise ValueError(f"unknown log level '{name}', valid values are: {valid}")
    return normalised


# --------------------------------------------------------------------------------------------
# Formatting


def _safe_str(value: object) -> str:
    # Event values come from any code in the process; a broken __str__ must not lose the line.
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def _event_time(event: LogEvent) -> datetime:
    stamp = event.get("log_time")
    if stamp is None:
        stamp = time.time()
    return datetime.fromtimestamp(stamp, tz=UTC)


def _event_level(event: LogEvent) -> LogLevel:
    level = event.get("log_level")
    # Hand-built events may carry no level; Twisted's legacy bridge treats those as info too.
    return _SEVERITY[_SEVERITY.index(level)] if level in _SEVERITY else _INFO


def _event_namespace(event: LogEvent) -> str:
    return _safe_str(event.get("log_namespace", "-"))


def _failure_error(failure: Failure) -> str:
    exc_type = failure.type
    name = exc_type.__name__ if isinstance(exc_type, type) else _safe_str(exc_type)
    text = " ".join(_safe_str(failure.value).splitlines())
    return f"{name}: {text}" if text else name


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # NaN and infinities are not valid JSON
    return value is None or isinstance(value, str | int)


def _json_field(value: object) -> Any:
    """``value`` as it goes into a JSON line: scalars and flat lists/dicts as-is, else text."""
    if _is_scalar(value):
        return value
    if isinstance(value, list | tuple) and all(_is_scalar(item) for item in value):
        return list(value)
    if isinstance(value, dict) and all(
        isinstance(key, str) and _is_scalar(item) for key, item in value.items()
    ):
        return dict(value)
    return _safe_str(value)


def format_text(event: LogEvent, logger_name: str) -> str:
    """One text line (plus traceback lines for a failure), newline-terminated."""
    stamp = _event_time(event).strftime("%Y-%m-%d %H:%M:%S UTC")
    level = _LEVEL_NAMES[_event_level(event)].upper()
    line = f"{stamp} | {logger_name} | {level} | ({_event_namespace(event)}) | {formatEvent(event)}"
    failure = event.get("log_failure")
    if failure is not None:
        line += "\n" + failure.getTraceback().rstrip("\n")
    return line + "\n"


def format_json(event: LogEvent, logger_name: str) -> str:
    """One flat JSON object on one line, newline-terminated."""
    moment = _event_time(event)
    record: dict[str, Any] = {
        "time": f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z",
        "level": _LEVEL_NAMES[_event_level(event)],
        "logger": logger_name,
        "namespace": _event_namespace(event),
        "message": formatEvent(event),
    }
    failure = event.get("log_failure")
    if failure is not None:
        record["error"] = _failure_error(failure)
        record["traceback"] = failure.getTraceback()
    legacy = event.get("log_namespace") == _LEGACY_NAMESPACE
    for key, value in event.items():
        if not isinstance(key, str) or key.startswith("log_") or key in record:
            continue
        if legacy and key in _LEGACY_KEYS:
            continue
        record[key] = _json_field(value)
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"


def _broken_event_message(event: LogEvent, error: BaseException) -> str:
    try:
        shown = repr(event)
    except Exception:
        shown = "<unrepresentable event>"
    return f"unable to format log event {shown}: {_safe_str(error)}"


def _broken_text(event: LogEvent, error: BaseException, logger_name: str) -> str:
    stamp = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    message = " ".join(_broken_event_message(event, error).splitlines())
    return f"{stamp} | {logger_name} | ERROR | ({_event_namespace(event)}) | {message}\n"


def _broken_json(event: LogEvent, error: BaseException, logger_name: str) -> str:
    moment = datetime.now(tz=UTC)
    record = {
        "time": f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z",
        "level": "error",
        "logger": logger_name,
        "namespace": _event_namespace(event),
        "message": _broken_event_message(event, error),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


class _LineFormatter:
    """Turns an event into its line; never raises, a broken event becomes a line saying so."""

    def __init__(self, *, json_format: bool, logger_name: str) -> None:
        self._format = format_json if json_format else format_text
        self._broken = _broken_json if json_format else _broken_text
        self._logger_name = logger_name

    def __call__(self, event: LogEvent) -> str:
        try:
            return self._format(event, self._logger_name)
        except Exception as error:
            return self._broken(event, error, self._logger_name)


# --------------------------------------------------------------------------------------------
# Observers


class _Sink(Protocol):
    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


@implementer(ILogFilterPredicate)
class _LevelGate:
    """The one level every observer of a :class:`LogControl` consults, so a change is instant."""

    def __init__(self, level: str) -> None:
        self.threshold: LogLevel | None = _THRESHOLDS[level]
        self.closed = False

    def __call__(self, event: LogEvent) -> object:
        if self.closed or self.threshold is None:
            return PredicateResult.no
        if _SEVERITY.index(_event_level(event)) >= _SEVERITY.index(self.threshold):
            return PredicateResult.yes
        return PredicateResult.no


@implementer(ILogObserver)
class _LineObserver:
    """Writes each event's line to a sink.

    Events can arrive from threads (stdlib logging in ``deferToThread`` work), so writes are
    serialised; the lock is re-entrant because an observer failure is reported by the
    publisher on the same thread.
    """

    def __init__(
        self,
        sink: Callable[[], _Sink],
        format_line: Callable[[LogEvent], str],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._sink = sink
        self._format_line = format_line
        self._on_close = on_close
        self._lock = threading.RLock()
        self._closed = False

    def __call__(self, event: LogEvent) -> None:
        line = self._format_line(event)
        with self._lock:
            if self._closed:
                return
            out = self._sink()
            out.write(line)
            out.flush()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._on_close is not None:
                self._on_close()


def _stderr() -> _Sink:
    return sys.stderr


def _open_log_file(path: str, max_size: int, max_rolls: int) -> LogFile:
    full_path = os.path.abspath(path)
    directory = os.path.dirname(full_path)
    os.makedirs(directory, mode=_LOG_DIR_MODE, exist_ok=True)
    # Only a new file gets 0600: given None, LogFile keeps an existing file's mode (which an
    # operator may have opened up for a log shipper) and reuses it for every rotated file.
    mode = None if os.path.exists(full_path) else _LOG_FILE_MODE
    return LogFile(  # type: ignore[no-untyped-call]
        os.path.basename(full_path),
        directory,
        rotateLength=max_size,
        defaultMode=mode,
        # 0 means no limit: a config value the agent accepts must not stop it starting.
        maxRotatedFiles=max_rolls or None,
    )


class LogControl:
    """The agent's log observers and their shared, live level.

    :param level: a Datadog level name (see :func:`parse_level`).
    :param json_format: one flat JSON object per line instead of text.
    :param console: stream for console output; :data:`STDERR` (default) follows
        ``sys.stderr``; ``None`` for no console output.
    :param file_path: log file; parent directories are created (0755), a new file is 0600.
    :param max_size: bytes after which the file is rotated (Datadog's ``log_file_max_size``).
    :param max_rolls: rotated files kept, ``<file>.1`` newest (``log_file_max_rolls``);
        0 keeps them all.
    :param logger_name: the name written on every line (Datadog's ``SECURITY``).

    The observers are made on first use (:meth:`observers`, :meth:`begin`, :meth:`attach`)
    and only once. A log file that cannot be opened never raises: :attr:`file_error` then
    holds a one-line reason and output goes to the console only; the caller logs a warning.
    """

    def __init__(
        self,
        *,
        level: str = "info",
        json_format: bool = False,
        console: TextIO | Literal["stderr"] | None = STDERR,
        file_path: str | None = None,
        max_size: int = 10 * 1024 * 1024,
        max_rolls: int = 1,
        logger_name: str = "SECURITY",
    ) -> None:
        if max_size < 1:
            raise ValueError(f"log file max size must be at least 1 byte, got {max_size}")
        if max_rolls < 0:
            raise ValueError(f"log file max rolls must not be negative, got {max_rolls}")
        self._level = parse_level(level)
        self._gate = _LevelGate(self._level)
        self._formatter = _LineFormatter(json_format=json_format, logger_name=logger_name)
        self._console = console
        self._file_path = file_path
        self._max_size = max_size
        self._max_rolls = max_rolls
        self._file_error: str | None = None
        self._writers: list[_LineObserver] | None = None
        self._observers: list[ILogObserver] = []
        self._publishers: list[LogPublisher] = []

    @property
    def level(self) -> str:
        """The Datadog level name last set (``trace`` reads back as ``trace``)."""
        return self._level

    @property
    def file_error(self) -> str | None:
        """Why the log file could not be opened, or ``None``. Reading it makes the observers."""
        self.observers()
        return self._file_error

    def set_level(self, level: str) -> None:
        """Change the level of every observer this control made, effective for the next event.

        :raises ValueError: for an unknown level name; the current level is then unchanged.
        """
        name = parse_level(level)
        self._gate.threshold = _THRESHOLDS[name]
        self._level = name

    def observers(self) -> list[ILogObserver]:
        """The level-filtered observers: console (if any), then file (if it could be opened)."""
        if self._writers is None:
            self._writers = []
            if self._console is not None:
                console = self._console
                sink: Callable[[], _Sink] = _stderr if console == STDERR else lambda: console
                self._writers.append(_LineObserver(sink, self._formatter))
            if self._file_path is not None:
                self._add_file_writer(self._file_path)
            self._observers = [FilteringLogObserver(w, [self._gate]) for w in self._writers]
        return list(self._observers)

    def _add_file_writer(self, path: str) -> None:
        assert self._writers is not None
        try:
            log_file = _open_log_file(path, self._max_size, self._max_rolls)
        except OSError as error:
            self._file_error = f"cannot open log file {path}: {error.strerror or error}"
            return
        self._writers.append(
            _LineObserver(lambda: log_file, self._formatter, on_close=log_file.close)
        )

    def begin(self, publisher_beginner: LogBeginner | None = None) -> None:
        """Start logging to :meth:`observers`; events logged before now are replayed to them.

        For ``security-agent start``. Standard output and error are left alone, so a crash
        before or outside the reactor still reaches the terminal.
        """
        beginner = globalLogBeginner if publisher_beginner is None else publisher_beginner
        beginner.beginLoggingTo(self.observers(), redirectStandardIO=False)
        if beginner is globalLogBeginner:
            # LogBeginner does not expose its publisher; for the global one it is known, and
            # for any other close() still silences the observers through the gate.
            self._publishers.append(globalLogPublisher)

    def attach(self, publisher: LogPublisher | None = None) -> None:
        """Add :meth:`observers` to a publisher whose logging has already begun.

        For ``twistd``/``twist``, which begin logging themselves. Attaching twice is harmless.
        """
        target = globalLogPublisher if publisher is None else publisher
        for observer in self.observers():
            target.addObserver(observer)
        if target not in self._publishers:
            self._publishers.append(target)

    def close(self) -> None:
        """Stop all output, detach from the publishers and close the log file. Idempotent."""
        self._gate.closed = True
        for publisher in self._publishers:
            for observer in self._observers:
                publisher.removeObserver(observer)
        self._publishers.clear()
        for writer in self._writers or ():
            writer.close()


# --------------------------------------------------------------------------------------------
# Standard library bridge


def twisted_level(levelno: int) -> LogLevel:
    """A standard-library level number (``logging.WARNING``, 7 for TRACE…) as a Twisted level."""
    for threshold, level in _FROM_STDLIB:
        if levelno >= threshold:
            return level
    return _DEBUG


class _TwistedBridgeHandler(logging.Handler):
    """Forwards stdlib records to twisted.logger, keyed by the stdlib logger's name."""

    def __init__(self, observer: ILogObserver | None, previous_root_level: int) -> None:
        super().__init__(logging.NOTSET)
        self.observer = observer
        self.previous_root_level = previous_root_level
        # Attributes every record has; anything else came from ``extra=`` and is forwarded.
        self._standard_keys = frozenset(logging.makeLogRecord({}).__dict__) | {"message"}
        self._emitting = False

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle holds this handler's RLock, so the flag only ever sees this thread:
        # if an observer logs through stdlib again (a twisted->stdlib bridge elsewhere) the
        # nested record is dropped instead of recursing forever.
        if self._emitting:
            return
        self._emitting = True
        try:
            self._forward(record)
        except Exception:
            self.handleError(record)
        finally:
            self._emitting = False

    def _forward(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.stack_info:
            text += "\n" + record.stack_info
        fields: dict[str, object] = {
            key: value
            for key, value in record.__dict__.items()
            if key not in self._standard_keys and not key.startswith(("log_", "_"))
        }
        # The text goes in as a field, never as the format: a stdlib message may contain braces.
        fields["log_text"] = text
        logger = Logger(namespace=record.name, observer=self.observer)
        level = twisted_level(record.levelno)
        exc_info = record.exc_info
        if exc_info is not None and exc_info[1] is not None:
            failure = Failure(exc_info[1], exc_info[0], exc_info[2])  # type: ignore[no-untyped-call]
            logger.failure("{log_text}", failure, level, **fields)
        else:
            logger.emit(level, "{log_text}", **fields)


def bridge_stdlib_logging(
    root_level: int = logging.DEBUG, *, observer: ILogObserver | None = None
) -> Callable[[], None]:
    """Send standard-library ``logging`` records to twisted.logger; return the undo function.

    A handler on the root logger forwards each record to ``Logger(namespace=record.name)``
    at the matching level (``WARNING`` becomes ``warn``), with ``exc_info`` as the event's
    failure and ``extra=`` fields as event fields. The root logger's level is set to
    ``root_level`` so the :class:`LogControl` level, not stdlib's, decides what is shown.

    Calling it again while installed does not add a second handler. The returned function
    removes the handler and restores the root level; calling it more than once is harmless.

    :param observer: where events go; the global publisher by default (tests pass their own).
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _TwistedBridgeHandler)), None)
    if handler is None:
        handler = _TwistedBridgeHandler(observer, root.level)
        root.addHandler(handler)
    else:
        handler.observer = observer
    root.setLevel(root_level)
    installed = handler

    def remove() -> None:
        if installed in root.handlers:
            root.removeHandler(installed)
            root.setLevel(installed.previous_root_level)

    return remove
