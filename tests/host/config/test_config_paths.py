"""path=True keys: relative paths resolve against the file that set them."""

from __future__ import annotations

import os

from host.config import Config, Source, load_config


def test_a_relative_path_from_a_file_resolves_against_that_files_directory(write, tmp_path):
    path = write(
        "etc/sa/security-agent.yaml",
        """\
        compliance_config:
          dir: compliance.d
          other: relative/stays
        runtime_security_config:
          policies:
            dir: ../policies
        """,
    )
    config = load_config([path], env={})
    config.declare("compliance_config.dir", "/etc/security-agent/compliance.d", path=True)
    config.declare("runtime_security_config.policies.dir", "/etc/p", path=True)
    assert config.get("compliance_config.dir") == str(tmp_path / "etc" / "sa" / "compliance.d")
    assert config.get_str("runtime_security_config.policies.dir") == str(
        tmp_path / "etc" / "policies"
    )
    # Undeclared or path=False keys are left as written.
    assert config.get("compliance_config.other") == "relative/stays"
    # The merged views resolve too; the per-source view shows what was written.
    assert config.get("compliance_config") == {
        "dir": str(tmp_path / "etc" / "sa" / "compliance.d"),
        "other": "relative/stays",
    }
    assert config.as_dict()["runtime_security_config"] == {
        "policies": {"dir": str(tmp_path / "etc" / "policies")}
    }
    assert config.by_source()["file"]["compliance_config"]["dir"] == "compliance.d"


def test_each_file_resolves_against_its_own_directory(write, tmp_path):
    first = write("one/datadog.yaml", "a: from-one\nb: from-one\n")
    second = write("two/security-agent.yaml", "b: from-two\n")
    config = load_config([first, second], env={})
    config.declare("a", "", path=True)
    config.declare("b", "", path=True)
    assert config.get("a") == str(tmp_path / "one" / "from-one")
    assert config.get("b") == str(tmp_path / "two" / "from-two")


def test_absolute_paths_defaults_and_empty_strings_are_untouched(write):
    path = write("security-agent.yaml", "abs: /var/lib/x\nempty: ''\n")
    config = load_config([path], env={})
    config.declare("abs", "", path=True)
    config.declare("empty", "default/rel", path=True)
    config.declare("from_default", "relative/default", path=True)
    assert config.get("abs") == "/var/lib/x"
    assert config.get("empty") == ""
    assert config.get("from_default") == "relative/default"


def test_env_and_runtime_paths_resolve_against_the_start_directory(write, tmp_path, monkeypatch):
    start = tmp_path / "start"
    start.mkdir()
    monkeypatch.chdir(start)
    config = load_config([], env={"DD_LOG_FILE": "logs/agent.log"})
    monkeypatch.chdir(tmp_path)  # a later chdir does not move configured paths
    config.declare("log_file", "", path=True)
    assert config.get("log_file") == str(start / "logs" / "agent.log")
    config.set("log_file", "./other.log", Source.CLI)
    assert config.get("log_file") == str(start / "other.log")


def test_lists_of_paths_resolve_item_by_item(write, tmp_path):
    path = write("conf/security-agent.yaml", "checks_dirs: [checks.d, /abs/checks.d]\n")
    config = load_config([path], env={})
    config.declare("checks_dirs", [], path=True)
    assert config.get_list("checks_dirs") == [
        str(tmp_path / "conf" / "checks.d"),
        "/abs/checks.d",
    ]


def test_explicit_cwd_is_used_for_non_file_values(tmp_path):
    config = Config(env={"DD_RUN_PATH": "run"}, cwd=str(tmp_path))
    config.declare("run_path", "", path=True)
    assert config.get("run_path") == os.path.join(str(tmp_path), "run")
