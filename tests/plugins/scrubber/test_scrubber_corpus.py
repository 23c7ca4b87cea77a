"""The scrubber against a corpus of secret-bearing lines and lines that must stay as they are.

Each line of scrubber_corpus.jsonl is {"input", "expected", "note"} plus, for secret-bearing
lines, "secrets": substrings that must not survive. Expected outputs follow Datadog's rules,
including their side effects: any word of exactly 32 or 40 hex digits is hidden (an MD5 or a
git SHA-1 as well as a key), while longer hex runs (SHA-256, container ids) stay.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugins.scrubber import Scrubber, scrub_bytes, scrub_text

CORPUS = [
    json.loads(line)
    for line in (Path(__file__).parent / "scrubber_corpus.jsonl").read_text().splitlines()
    if line.strip()
]
SECRET = [case for case in CORPUS if case.get("secrets")]
UNTOUCHED = [case for case in CORPUS if not case.get("secrets")]


def test_corpus_size():
    assert len(SECRET) >= 60
    assert len(UNTOUCHED) >= 20
    assert all(case["input"] == case["expected"] for case in UNTOUCHED)


@pytest.mark.parametrize("case", SECRET, ids=[c["note"] for c in SECRET])
def test_secret_lines_are_scrubbed(case):
    result = scrub_text(case["input"])
    assert result == case["expected"]
    for secret in case["secrets"]:
        assert secret not in result


@pytest.mark.parametrize("case", UNTOUCHED, ids=[c["input"][:40] for c in UNTOUCHED])
def test_untouched_lines_stay(case):
    assert scrub_text(case["input"]) == case["input"]


def test_whole_corpus_as_one_file_scrubs_like_each_line():
    # Rules that are skipped when their hint is absent from the whole text must still run
    # line by line when the text mixes everything.
    text = "\n".join(case["input"] for case in CORPUS)
    expected = "\n".join(case["expected"] for case in CORPUS)
    assert scrub_text(text) == expected
    assert scrub_bytes(text.encode()) == expected.encode()


def test_scrubbing_is_idempotent_on_the_corpus():
    for case in CORPUS:
        assert scrub_text(case["expected"]) == case["expected"], case["note"]


def test_a_scrubber_without_defaults_changes_nothing():
    for case in CORPUS:
        assert Scrubber(defaults=False).scrub_text(case["input"]) == case["input"]
