"""The auth token file: where, created once (even by racing processes), 0600, validated."""

from __future__ import annotations

import multiprocessing
import os
import stat

import pytest
from support import FakeReactor, entry_point, make_agent
from twisted.logger import LogLevel, globalLogPublisher

import plugins.ipc_api
from host.bootstrap import StartupError
from plugins.ipc_client.auth_token import AuthTokenError, fetch_or_create_token, token_path


def test_token_created_as_64_hex_chars_mode_0600(tmp_path):
    path = tmp_path / "dir" / "auth_token"
    token = fetch_or_create_token(path)
    assert len(token) == 64
    int(token, 16)
    assert path.read_text() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fetch_or_create_token(path) == token  # fetched, not replaced
    assert [p.name for p in path.parent.iterdir()] == ["auth_token"]  # no temp file left


def test_existing_token_is_fetched_and_stripped(tmp_path):
    path = tmp_path / "auth_token"
    path.write_text("x" * 40 + "\n")
    path.chmod(0o600)
    assert fetch_or_create_token(path) == "x" * 40


def test_short_token_refused(tmp_path):
    path = tmp_path / "auth_token"
    path.write_text("x" * 31)
    with pytest.raises(AuthTokenError) as info:
        fetch_or_create_token(path)
    assert (
        str(info.value) == "invalid authentication token: must be at least 32 characters in length"
    )


def test_group_readable_token_warns(tmp_path):
    path = tmp_path / "auth_token"
    path.write_text("y" * 64)
    path.chmod(0o640)
    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        assert fetch_or_create_token(path) == "y" * 64
    finally:
        globalLogPublisher.removeObserver(seen.append)
    warnings = [e for e in seen if e.get("log_level") is LogLevel.warn]
    assert len(warnings) == 1
    assert warnings[0]["path"] == str(path)
    assert warnings[0]["mode"] == "0o640"


def test_token_path_defaults_next_to_config_file_then_configured(tmp_path):
    agent = make_agent(FakeReactor(), [entry_point("ipc_api", plugins.ipc_api)], tmp_path=tmp_path)
    assert token_path(agent.config, agent.run_path) == tmp_path / "auth_token"
    agent = make_agent(
        FakeReactor(),
        [entry_point("ipc_api", plugins.ipc_api)],
        "auth_token_file_path: tokens/my_token\n",
        tmp_path=tmp_path,
    )
    assert token_path(agent.config, agent.run_path) == tmp_path / "tokens" / "my_token"


def test_short_token_stops_the_start_with_one_line(tmp_path):
    (tmp_path / "auth_token").write_text("short")
    with pytest.raises(StartupError) as info:
        make_agent(FakeReactor(), [entry_point("ipc_api", plugins.ipc_api)], tmp_path=tmp_path)
    assert str(info.value) == (
        "plugin ipc_api: invalid authentication token: must be at least 32 characters in length"
    )


def _race(path, barrier, results):
    barrier.wait()
    results.put(fetch_or_create_token(path))


@pytest.mark.parametrize("round_", range(5))
def test_racing_processes_agree_on_one_token(tmp_path, round_):
    path = tmp_path / "auth_token"
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    tokens = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(set(tokens)) == 1
    assert path.read_text() == tokens[0]
    assert sorted(os.listdir(tmp_path)) == ["auth_token"]
