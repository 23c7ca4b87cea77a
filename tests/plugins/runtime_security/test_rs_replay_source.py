"""Replaying events from JSON-lines files."""

from __future__ import annotations

import json

import pytest

from plugins.runtime_security.sources.replay_source import ReplayError, ReplaySource, read_events


def test_replay_delivers_every_event_in_order(tmp_path, collector):
    path = tmp_path / "events.jsonl"
    events = [
        {"type": "open", "timestamp": 1.0, "open": {"file": {"path": "/etc/shadow"}}},
        {"type": "exec", "process": {"pid": 3}},
    ]
    path.write_text("# a comment\n\n" + "\n".join(json.dumps(e) for e in events) + "\n")
    src = ReplaySource(str(path))
    src.start(collector)
    assert src.wait(5)
    src.stop()
    assert [e["type"] for e in collector.events] == ["open", "exec"]
    assert collector.events[0]["open"]["file"]["path"] == "/etc/shadow"
    assert collector.events[1]["timestamp"] == 0.0
    assert collector.events[1]["source"] == "replay"
    stats = src.stats()
    assert (stats.active, stats.reason, stats.events) == (False, "replay finished", 2)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "{not json",
            "events.jsonl:2: invalid JSON: Expecting property name enclosed in double "
            "quotes (column 2)",
        ),
        ("[1, 2]", "events.jsonl:2: an event must be a JSON object, got list"),
        ('{"open": {}}', "events.jsonl:2: key 'type' is missing or not a string"),
    ],
)
def test_a_bad_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "exec"}\n' + line + "\n")
    with pytest.raises(ReplayError) as info:
        list(read_events(str(path)))
    assert str(info.value) == f"{tmp_path}/{message}"


def test_replay_source_stops_at_a_bad_line_and_says_why(tmp_path, collector):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "exec"}\n[]\n{"type": "exit"}\n')
    src = ReplaySource(str(path))
    src.start(collector)
    assert src.wait(5)
    src.stop()
    assert [e["type"] for e in collector.events] == ["exec"]
    assert src.stats().reason == f"{path}:2: an event must be a JSON object, got list"


def test_missing_file_leaves_the_source_inactive(tmp_path):
    src = ReplaySource(str(tmp_path / "nope.jsonl"))
    src.start(lambda e: None)
    assert src.stats().active is False
    assert src.stats().reason == f"{tmp_path}/nope.jsonl: no such file"
    src.stop()
