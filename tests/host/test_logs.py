"""host.logs: what an operator sees in the console, the log file and the JSON stream.

Every test uses its own LogPublisher/LogBeginner, never the global ones, so tests can run in
any order and in parallel workers.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import sys
import types
from datetime import UTC, datetime

import pytest
from support import run_in_child_as_nobody
from twisted.logger import LogBeginner, Logger, LogLevel, LogPublisher

from host.logs import LEVELS, LogControl, bridge_stdlib_logging, parse_level

STAMP = "2026-11-24 05:00:00 UTC"  # FIXED_TIME as the text format writes it
FIXED_TIME = datetime(2026, 11, 24, 5, 0, 0, 123000, tzinfo=UTC).timestamp()
VALID = "valid values are: trace, debug, info, warn, error, critical and off"


def make_event(fmt, level=LogLevel.info, namespace="host.test", **fields):
    """An event as Logger.emit builds it, but at a fixed time so lines can be compared whole."""
    return {
        "log_format": fmt,
        "log_level": level,
        "log_namespace": namespace,
        "log_source": None,
        "log_time": FIXED_TIME,
        **fields,
    }


def attached(**kwargs):
    """A control writing to a StringIO console, attached to a private publisher."""
    out = io.StringIO()
    control = LogControl(console=out, **kwargs)
    publisher = LogPublisher()
    control.attach(publisher)
    return control, publisher, out


def raise_value_error():
    raise ValueError("bad thing")


def failure_event(**fields):
    from twisted.python.failure import Failure

    try:
        raise_value_error()
    except ValueError:
        failure = Failure()
    return make_event("scan failed", level=LogLevel.error, log_failure=failure, **fields)


# --- parse_level --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("trace", "trace"),
        ("DEBUG", "debug"),
        ("Info", "info"),
        ("warn", "warn"),
        ("WARNING", "warn"),
        ("warning", "warn"),
        ("Error", "error"),
        ("CRITICAL", "critical"),
        ("off", "off"),
        (" info ", "info"),
    ],
)
def test_parse_level_normalises(given, expected):
    assert parse_level(given) == expected


@pytest.mark.parametrize("given", ["err", "verbose", "", "warnings", "fatal"])
def test_parse_level_rejects_unknown_names_with_exact_message(given):
    with pytest.raises(ValueError, match=r"^unknown log level") as info:
        parse_level(given)
    assert str(info.value) == f"unknown log level '{given}', {VALID}"


def test_levels_are_datadogs_names():
    assert LEVELS == ("trace", "debug", "info", "warn", "error", "critical", "off")


def test_control_rejects_unknown_level_and_bad_rotation_settings():
    with pytest.raises(ValueError, match=r"^unknown log level 'loud', valid values"):
        LogControl(level="loud", console=None)
    with pytest.raises(ValueError, match="max rolls"):
        LogControl(console=None, max_rolls=-1)
    with pytest.raises(ValueError, match="max size"):
        LogControl(console=None, max_size=0)


# --- text format --------------------------------------------------------------------------


def test_text_line_format():
    _control, publisher, out = attached()
    publisher(make_event("hello {who}", who="world"))
    assert out.getvalue() == f"{STAMP} | SECURITY | INFO | (host.test) | hello world\n"


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        (LogLevel.debug, "DEBUG"),
        (LogLevel.info, "INFO"),
        (LogLevel.warn, "WARN"),
        (LogLevel.error, "ERROR"),
        (LogLevel.critical, "CRITICAL"),
    ],
)
def test_text_level_names_are_datadogs(level, shown):
    _control, publisher, out = attached(level="trace", logger_name="SYS-PROBE")
    publisher(make_event("x", level=level, namespace="plugins.runtime"))
    assert out.getvalue() == f"{STAMP} | SYS-PROBE | {shown} | (plugins.runtime) | x\n"


def test_text_from_a_real_logger():
    _control, publisher, out = attached()
    Logger(namespace="host.scheduler", observer=publisher).info("ran {plugin}", plugin="cspm")
    [line] = out.getvalue().splitlines()
    stamp, rest = line.split(" | ", 1)
    datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S UTC")
    assert rest == "SECURITY | INFO | (host.scheduler) | ran cspm"


def test_text_failure_is_followed_by_traceback_lines():
    _control, publisher, out = attached()
    publisher(failure_event())
    lines = out.getvalue().splitlines()
    assert lines[0] == f"{STAMP} | SECURITY | ERROR | (host.test) | scan failed"
    assert lines[1] == "Traceback (most recent call last):"
    assert any("raise_value_error" in line for line in lines)
    assert lines[-1].endswith("ValueError: bad thing")
    assert out.getvalue().endswith("bad thing\n")


# --- JSON format --------------------------------------------------------------------------


def test_json_plain_event_has_exactly_the_fixed_keys():
    _control, publisher, out = attached(json_format=True)
    publisher(make_event("agent started"))
    text = out.getvalue()
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert "\x1e" not in text
    assert json.loads(text) == {
        "time": "2026-11-24T05:00:00.123Z",
        "level": "info",
        "logger": "SECURITY",
        "namespace": "host.test",
        "message": "agent started",
    }


def test_json_real_logger_event_has_no_private_keys():
    _control, publisher, out = attached(json_format=True)
    Logger(namespace="host.agent", observer=publisher).warn("disk {pct}% full", pct=93)
    record = json.loads(out.getvalue())
    assert set(record) == {"time", "level", "logger", "namespace", "message", "pct"}
    assert record["level"] == "warn"
    assert record["message"] == "disk 93% full"
    assert record["pct"] == 93
    assert record["time"].endswith("Z")
    assert datetime.strptime(record["time"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_json_extra_fields_are_flat_and_values_made_serialisable():
    class Opaque:
        def __str__(self):
            return "opaque-thing"

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

        def __repr__(self):
            raise RuntimeError("no")

    _control, publisher, out = attached(json_format=True)
    publisher(
        make_event(
            "ran {plugin} in {duration_ms}ms",
            plugin="compliance",
            duration_ms=12.5,
            run_id=7,
            ok=True,
            missing=None,
            tags=("a", "b"),
            counts={"passed": 3, "failed": 1},
            nested=[[1]],
            obj=Opaque(),
            broken=Unprintable(),
            ratio=float("nan"),
        )
    )
    [line] = out.getvalue().splitlines()
    assert json.loads(line) == {
        "time": "2026-11-24T05:00:00.123Z",
        "level": "info",
        "logger": "SECURITY",
        "namespace": "host.test",
        "message": "ran compliance in 12.5ms",
        "plugin": "compliance",
        "duration_ms": 12.5,
        "run_id": 7,
        "ok": True,
        "missing": None,
        "tags": ["a", "b"],
        "counts": {"passed": 3, "failed": 1},
        "nested": "[[1]]",
        "obj": "opaque-thing",
        "broken": "<unprintable Unprintable>",
        "ratio": "nan",
    }


def test_json_event_fields_never_replace_the_fixed_keys():
    _control, publisher, out = attached(json_format=True)
    publisher(make_event("m", level=LogLevel.warn, message="x", level_="y", time=1, logger="z"))
    record = json.loads(out.getvalue())
    assert record["message"] == "m"
    assert record["level"] == "warn"
    assert record["time"] == "2026-11-24T05:00:00.123Z"
    assert record["logger"] == "SECURITY"
    assert record["level_"] == "y"


def test_json_failure_adds_traceback_and_one_line_error():
    _control, publisher, out = attached(json_format=True)
    publisher(failure_event(plugin="compliance"))
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert set(record) == {
        "time", "level", "logger", "namespace", "message", "plugin", "error", "traceback",
    }  # fmt: skip
    assert record["level"] == "error"
    assert record["message"] == "scan failed"
    assert record["error"] == "ValueError: bad thing"
    assert record["traceback"].startswith("Traceback (most recent call last):\n")
    assert "raise_value_error" in record["traceback"]
    assert record["traceback"].rstrip().endswith("ValueError: bad thing")


def test_error_field_without_a_failure_is_an_ordinary_field():
    _control, publisher, out = attached(json_format=True)
    publisher(make_event("cannot read {path}: {error}", path="/etc/x", error="EACCES"))
    record = json.loads(out.getvalue())
    assert record["error"] == "EACCES"
    assert "traceback" not in record


@pytest.mark.parametrize("json_format", [False, True])
def test_broken_event_is_written_as_a_line_saying_so(json_format):
    control, publisher, out = attached(json_format=json_format)
    bad = make_event("hello")
    bad["log_time"] = "not a time"
    observer = control.observers()[0]
    observer(bad)  # must not raise
    publisher(make_event("after"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    if json_format:
        record = json.loads(lines[0])
        assert record["level"] == "error"
        assert record["namespace"] == "host.test"
        assert record["message"].startswith("unable to format log event ")
        assert "not a time" in record["message"]
        assert json.loads(lines[1])["message"] == "after"
    else:
        assert " | SECURITY | ERROR | (host.test) | unable to format log event " in lines[0]
        assert lines[1].endswith("| after")


def test_unformattable_message_still_gives_a_line():
    _control, publisher, out = attached(json_format=True)
    publisher(make_event("value is {missing_key}"))
    record = json.loads(out.getvalue())
    assert record["message"].startswith("Unable to format event")


def test_legacy_twisted_log_events_keep_only_useful_fields():
    from twisted.logger._legacy import publishToNewObserver
    from twisted.python.log import textFromEventDict

    _control, publisher, out = attached(json_format=True)
    legacy = {"message": ("Starting factory",), "isError": 0, "system": "-", "time": FIXED_TIME}
    publishToNewObserver(publisher, legacy, textFromEventDict)
    assert json.loads(out.getvalue()) == {
        "time": "2026-11-24T05:00:00.123Z",
        "level": "info",
        "logger": "SECURITY",
        "namespace": "log_legacy",
        "message": "Starting factory",
        "system": "-",
    }


# --- live level ---------------------------------------------------------------------------


def test_set_level_changes_output_at_runtime():
    control, publisher, out = attached(level="info")
    log = Logger(namespace="host.test", observer=publisher)

    log.debug("hidden at info")
    log.info("shown at info")
    assert [line.rsplit(" | ", 1)[1] for line in out.getvalue().splitlines()] == ["shown at info"]

    control.set_level("debug")
    assert control.level == "debug"
    log.debug("shown at debug")

    control.set_level("TRACE")
    assert control.level == "trace"
    log.debug("shown at trace")

    control.set_level("error")
    log.warn("hidden at error")
    log.error("shown at error")

    control.set_level("off")
    assert control.level == "off"
    log.critical("hidden when off")

    messages = [line.rsplit(" | ", 1)[1] for line in out.getvalue().splitlines()]
    assert messages == ["shown at info", "shown at debug", "shown at trace", "shown at error"]


def test_set_level_rejects_unknown_and_keeps_current():
    control, publisher, out = attached(level="warn")
    with pytest.raises(ValueError, match=r"^unknown log level 'chatty', " + VALID + "$"):
        control.set_level("chatty")
    assert control.level == "warn"
    publisher(make_event("still filtered", level=LogLevel.info))
    publisher(make_event("still shown", level=LogLevel.warn))
    assert out.getvalue().splitlines() == [f"{STAMP} | SECURITY | WARN | (host.test) | still shown"]


def test_set_level_applies_to_console_and_file_together(tmp_path):
    log_path = tmp_path / "agent.log"
    control, publisher, out = attached(level="info", file_path=str(log_path))
    assert len(control.observers()) == 2
    publisher(make_event("one", level=LogLevel.debug))
    control.set_level("debug")
    publisher(make_event("two", level=LogLevel.debug))
    control.set_level("off")
    publisher(make_event("three", level=LogLevel.critical))
    expected = f"{STAMP} | SECURITY | DEBUG | (host.test) | two\n"
    control.close()
    assert out.getvalue() == expected
    assert log_path.read_text() == expected


def test_level_reads_back_what_was_set():
    for name in LEVELS:
        assert LogControl(level=name, console=None).level == name
    assert LogControl(level="Warning", console=None).level == "warn"


# --- file ---------------------------------------------------------------------------------


def current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_log_file_is_created_0600_with_parent_dirs(tmp_path):
    log_path = tmp_path / "var" / "log" / "datadog" / "security-agent.log"
    control = LogControl(console=None, file_path=str(log_path))
    publisher = LogPublisher()
    control.attach(publisher)
    publisher(make_event("to the file"))
    assert control.file_error is None
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_path.parent.stat().st_mode) == 0o755 & ~current_umask()
    assert log_path.read_text() == (f"{STAMP} | SECURITY | INFO | (host.test) | to the file\n")
    control.close()


def test_existing_log_file_keeps_its_mode_and_content(tmp_path):
    log_path = tmp_path / "agent.log"
    log_path.write_text("earlier line\n")
    log_path.chmod(0o640)
    control = LogControl(console=None, file_path=str(log_path), json_format=True)
    publisher = LogPublisher()
    control.attach(publisher)
    publisher(make_event("appended"))
    control.close()
    lines = log_path.read_text().splitlines()
    assert lines[0] == "earlier line"
    assert json.loads(lines[1])["message"] == "appended"
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o640


def test_file_rotates_at_max_size_and_keeps_max_rolls(tmp_path):
    log_path = tmp_path / "agent.log"
    max_size = 2000
    control = LogControl(console=None, file_path=str(log_path), max_size=max_size, max_rolls=2)
    publisher = LogPublisher()
    control.attach(publisher)
    # Each line is a fixed 100 bytes, so 20 fill a file; 110 lines rotate five times.
    prefix_len = len(f"{STAMP} | SECURITY | INFO | (host.test) | ")
    total = 110
    for n in range(total):
        publisher(make_event("{n:04d}" + "x" * (100 - prefix_len - 5), n=n))
    control.close()

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["agent.log", "agent.log.1", "agent.log.2"]
    for rotated in ("agent.log.1", "agent.log.2"):
        size = (tmp_path / rotated).stat().st_size
        assert size == max_size  # rotation happens once the file has reached max_size
        assert stat.S_IMODE((tmp_path / rotated).stat().st_mode) == 0o600
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600

    def numbers(name):
        lines = (tmp_path / name).read_text().splitlines()
        assert all(len(line) == 99 for line in lines)
        return [int(line.rsplit(" | ", 1)[1][:4]) for line in lines]

    kept = numbers("agent.log.2") + numbers("agent.log.1") + numbers("agent.log")
    # Oldest files were dropped; what is kept is the newest lines, in order, without gaps.
    assert kept == list(range(total - len(kept), total))
    assert len(kept) == 50  # 20 + 20 + the 10 written since the last rotation


def test_max_rolls_one_keeps_a_single_old_file(tmp_path):
    log_path = tmp_path / "agent.log"
    control = LogControl(console=None, file_path=str(log_path), max_size=300, max_rolls=1)
    publisher = LogPublisher()
    control.attach(publisher)
    for n in range(40):
        publisher(make_event("line {n}", n=n))
    control.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.log", "agent.log.1"]


def test_max_rolls_zero_keeps_every_old_file(tmp_path):
    log_path = tmp_path / "agent.log"
    control = LogControl(console=None, file_path=str(log_path), max_size=300, max_rolls=0)
    publisher = LogPublisher()
    control.attach(publisher)
    for n in range(40):
        publisher(make_event("line {n:02d}", n=n))
    control.close()
    rotated = sorted(int(p.suffix[1:]) for p in tmp_path.glob("agent.log.*"))
    assert rotated == list(range(1, len(rotated) + 1))
    assert len(rotated) > 5
    everything = (
        "".join((tmp_path / f"agent.log.{n}").read_text() for n in reversed(rotated))
        + log_path.read_text()
    )
    assert [line[-2:] for line in everything.splitlines()] == [f"{n:02d}" for n in range(40)]


def test_path_under_a_regular_file_sets_file_error_and_logs_to_console(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    log_path = blocker / "agent.log"
    out = io.StringIO()
    control = LogControl(console=out, file_path=str(log_path))
    publisher = LogPublisher()
    control.attach(publisher)  # must not raise
    assert control.file_error is not None
    assert "\n" not in control.file_error
    assert str(log_path) in control.file_error
    assert control.file_error.startswith("cannot open log file ")
    assert len(control.observers()) == 1
    publisher(make_event("console still works"))
    assert out.getvalue().endswith("| console still works\n")
    control.close()


def test_permission_denied_sets_file_error(tmp_path):
    # As root every mode is writable, so the log file is opened as nobody in a child process.
    tmp_path.chmod(0o755)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)

    def open_log():
        control = LogControl(console=None, file_path="locked/agent.log")
        return f"observers={len(control.observers())} error={control.file_error}"

    output = run_in_child_as_nobody(tmp_path, open_log)
    if output.startswith("SKIP: "):
        pytest.skip(output)
    assert output.startswith("observers=0 error=cannot open log file ")
    assert output.endswith("Permission denied")


def test_open_failure_of_any_kind_becomes_file_error(tmp_path, monkeypatch):
    # Stands in for permission denied when the tests run as root.
    def refuse(name, directory, **_kwargs):
        raise PermissionError(13, "Permission denied", os.path.join(directory, name))

    monkeypatch.setattr("host.logs.LogFile", refuse)
    out = io.StringIO()
    control = LogControl(console=out, file_path=str(tmp_path / "agent.log"))
    assert control.file_error == f"cannot open log file {tmp_path / 'agent.log'}: Permission denied"
    assert len(control.observers()) == 1


def test_file_error_is_none_without_a_file():
    assert LogControl(console=None).file_error is None


# --- begin / attach / close ---------------------------------------------------------------


def private_beginner(publisher):
    stdio = types.SimpleNamespace(stdout=io.StringIO(), stderr=io.StringIO())
    warnings_module = types.SimpleNamespace(showwarning=lambda *a, **k: None)
    return LogBeginner(publisher, io.StringIO(), stdio, warnings_module), stdio


def test_begin_replays_earlier_events_and_leaves_stdio_alone():
    publisher = LogPublisher()
    beginner, stdio = private_beginner(publisher)
    stdout, stderr = stdio.stdout, stdio.stderr
    publisher(make_event("logged before begin"))

    out = io.StringIO()
    control = LogControl(console=out)
    control.begin(beginner)
    publisher(make_event("logged after begin"))

    assert out.getvalue().splitlines() == [
        f"{STAMP} | SECURITY | INFO | (host.test) | logged before begin",
        f"{STAMP} | SECURITY | INFO | (host.test) | logged after begin",
    ]
    assert stdio.stdout is stdout
    assert stdio.stderr is stderr
    control.close()
    publisher(make_event("after close"))
    assert "after close" not in out.getvalue()


def test_attach_twice_does_not_duplicate_lines():
    control, publisher, out = attached()
    control.attach(publisher)
    publisher(make_event("once"))
    assert out.getvalue().count("once") == 1


def test_observers_are_built_once():
    control = LogControl(console=io.StringIO())
    first = control.observers()
    assert len(first) == 1
    assert control.observers() == first
    first.clear()  # a caller's copy; the control's own list is unaffected
    assert len(control.observers()) == 1


def test_close_detaches_and_closes_the_file(tmp_path):
    log_path = tmp_path / "agent.log"
    control, publisher, out = attached(file_path=str(log_path))
    publisher(make_event("before"))
    control.close()
    control.close()  # idempotent
    publisher(make_event("after"))
    for observer in control.observers():
        observer(make_event("direct after close"))  # inert, and no write to a closed file
    control.set_level("debug")
    publisher(make_event("after set_level"))
    assert out.getvalue().splitlines() == [f"{STAMP} | SECURITY | INFO | (host.test) | before"]
    assert log_path.read_text() == out.getvalue()


def test_default_console_follows_sys_stderr(capsys):
    control = LogControl()
    publisher = LogPublisher()
    control.attach(publisher)
    publisher(make_event("to stderr"))
    captured = capsys.readouterr()
    assert captured.err == f"{STAMP} | SECURITY | INFO | (host.test) | to stderr\n"
    assert captured.out == ""
    assert sys.stderr is not None


def test_no_console_means_no_console_observer():
    assert LogControl(console=None).observers() == []


# --- stdlib bridge ------------------------------------------------------------------------


@pytest.fixture
def bridged():
    """A JSON control on a private publisher, with the stdlib bridge pointed at it."""
    control, publisher, out = attached(json_format=True, level="debug")
    root = logging.getLogger()
    level_before = root.level
    remove = bridge_stdlib_logging(observer=publisher)
    try:
        yield types.SimpleNamespace(control=control, publisher=publisher, out=out, remove=remove)
    finally:
        remove()
        assert root.level == level_before


def records(out):
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_bridge_forwards_stdlib_records(bridged):
    out = bridged.out
    lib = logging.getLogger("some.library")
    lib.debug("debug %d", 1)
    lib.info("info {braces} stay %s", "literal")
    lib.warning("careful", extra={"plugin": "cws"})
    lib.error("bad")
    lib.critical("worse")
    got = [(r["level"], r["namespace"], r["message"]) for r in records(out)]
    assert got == [
        ("debug", "some.library", "debug 1"),
        ("info", "some.library", "info {braces} stay literal"),
        ("warn", "some.library", "careful"),
        ("error", "some.library", "bad"),
        ("critical", "some.library", "worse"),
    ]
    assert records(out)[2]["plugin"] == "cws"
    assert set(records(out)[0]) == {"time", "level", "logger", "namespace", "message"}


def test_bridge_forwards_exc_info_as_failure(bridged):
    out = bridged.out
    try:
        raise_value_error()
    except ValueError:
        logging.getLogger("lib").exception("while scanning")
    [record] = records(out)
    assert record["level"] == "error"
    assert record["message"] == "while scanning"
    assert record["error"] == "ValueError: bad thing"
    assert "raise_value_error" in record["traceback"]


def test_bridge_respects_the_control_level(bridged):
    out = bridged.out
    bridged.control.set_level("warn")
    logging.getLogger("lib").info("hidden")
    logging.getLogger("lib").warning("shown")
    assert [r["message"] for r in records(out)] == ["shown"]


def test_bridge_is_idempotent_and_removable(bridged):
    out = bridged.out
    root = logging.getLogger()
    remove_again = bridge_stdlib_logging(observer=bridged.publisher)
    handlers = [h for h in root.handlers if type(h).__name__ == "_TwistedBridgeHandler"]
    assert len(handlers) == 1
    assert root.level == logging.DEBUG

    logging.getLogger("lib").info("once")
    assert [r["message"] for r in records(out)] == ["once"]

    remove_again()
    assert not [h for h in root.handlers if type(h).__name__ == "_TwistedBridgeHandler"]
    logging.getLogger("lib").warning("not forwarded after removal")
    bridged.remove()  # harmless the second time
    assert [r["message"] for r in records(out)] == ["once"]
