"""Policy files: order, agent_version, filters, disabled, combine/override, actions, and bad
input reported with file:line while everything else loads."""

from __future__ import annotations

import pytest

from plugins.runtime_security.durations import DurationError, parse_duration
from plugins.runtime_security.policy_loader import load_policies, policy_files
from plugins.runtime_security.versions import ConstraintError, satisfies

FACTS = {"os": {"name": "linux", "id": "debian"}, "kernel": {"major": 6, "minor": 1}}


def load(directory, version="7.70.0", enforcement=True, **kw):
    return load_policies(
        policy_files(str(directory)), agent_version=version, enforcement=enforcement,
        facts=FACTS, **kw,
    )  # fmt: skip


def status(policies):
    return {
        rid: (r.status, r.error)
        for rid, r in policies.rules.items()
        if r.policy != "default.policy"
    }


def test_the_shipped_default_policy_loads_first_and_every_rule_compiles(tmp_path):
    (tmp_path / "b.policy").write_text("rules: []\n")
    (tmp_path / "a.policy").write_text("rules: []\n")
    policies = load(tmp_path)
    assert [(p.name, p.source) for p in policies.policies] == [
        ("default.policy", "built-in"), ("a.policy", "file"), ("b.policy", "file"),
    ]  # fmt: skip
    default = policies.policies[0]
    assert default.version == "1.0.0"
    assert len(default.rules) >= 30
    assert all(policies.rules[r].status == "loaded" for r in default.rules)
    assert policies.errors == []


def test_a_default_policy_in_the_directory_replaces_the_shipped_one(tmp_path):
    (tmp_path / "default.policy").write_text(
        'version: 5\nrules:\n  - id: mine\n    expression: exec.file.name == "x"\n'
    )
    (tmp_path / "a.policy").write_text("rules: []\n")
    policies = load(tmp_path)
    assert [(p.name, p.source, p.version) for p in policies.policies] == [
        ("default.policy", "file", "5"), ("a.policy", "file", ""),
    ]  # fmt: skip
    assert policies.loaded == ["mine"]


def test_a_bad_rule_is_reported_and_the_others_load(tmp_path):
    (tmp_path / "t.policy").write_text(
        "rules:\n"
        '  - id: good\n    expression: open.file.path == "/etc/passwd"\n'
        "  - id: typo\n    expression: open.file.path == \n"
        "  - id: mistyped\n    expression: open.file.path == 3\n"
        "  - id: no_expr\n"
        "  - {expression: 'open.file.path == \"/x\"'}\n"
        '  - id: "bad id!"\n    expression: open.file.path == "/x"\n'
    )
    policies = load(tmp_path)
    got = status(policies)
    assert got["good"] == ("loaded", "")
    assert got["typo"] == (
        "error",
        "rule typo, line 1, column 18: expected a value, a field or '(', got the end of the "
        "expression",
    )
    assert got["mistyped"] == (
        "error",
        "rule mistyped, line 1, column 19: expected a string value after '==' to compare with "
        "string field 'open.file.path', got int 3",
    )
    assert got["no_expr"] == ("error", "key 'expression' is missing or not a string")
    assert got["bad id!"] == ("error", "invalid rule ID 'bad id!'")
    assert policies.errors == [f"{tmp_path}/t.policy: rules[4]: key 'id' is missing"]
    assert policies.ruleset.evaluate(
        {"type": "open", "open": {"file": {"path": "/etc/passwd"}}}
    ) == ["good"]


def test_invalid_yaml_names_file_and_line_and_other_files_load(tmp_path):
    (tmp_path / "a.policy").write_text("rules:\n  - id: broken\n    expression: [unclosed\n")
    (tmp_path / "b.policy").write_text(
        'rules:\n  - id: fine\n    expression: exec.file.name == "x"\n'
    )
    (tmp_path / "c.policy").write_text("- just a list\n")
    policies = load(tmp_path)
    assert policies.errors[0].startswith(f"{tmp_path}/a.policy:4: invalid YAML: ")
    assert (
        policies.errors[1]
        == f"{tmp_path}/c.policy: expected a mapping with version, macros and rules"
    )
    assert status(policies) == {"fine": ("loaded", "")}


def test_agent_version_filters_and_disabled(tmp_path):
    (tmp_path / "t.policy").write_text(
        "rules:\n"
        "  - id: new\n    agent_version: '>= 7.80'\n    expression: exec.file.name == \"a\"\n"
        "  - id: current\n    agent_version: '>=7.2, <8'\n    expression: exec.file.name == \"b\"\n"
        "  - id: windows\n    filters: ['os == \"windows\"']\n"
        '    expression: exec.file.name == "c"\n'
        '  - id: linux\n    filters: [\'os == "linux"\']\n    expression: exec.file.name == "d"\n'
        '  - id: switched_off\n    disabled: true\n    expression: exec.file.name == "e"\n'
        "  - id: bad_constraint\n    agent_version: 'newest'\n"
        '    expression: exec.file.name == "f"\n'
    )
    got = status(load(tmp_path, version="7.70.1"))
    assert got == {
        "new": ("filtered", "agent_version >= 7.80 does not match 7.70.1"),
        "current": ("loaded", ""),
        "windows": ("filtered", 'filter os == "windows" does not match this host'),
        "linux": ("loaded", ""),
        "switched_off": ("disabled", ""),
        "bad_constraint": ("error", "invalid version constraint 'newest'"),
    }


def test_duplicates_combine_override_and_macro_merge(tmp_path):
    (tmp_path / "a.policy").write_text(
        "macros:\n  - id: NAMES\n    values: [a]\n"
        "rules:\n  - id: r\n    expression: exec.file.name in NAMES\n    every: 1m\n"
    )
    (tmp_path / "b.policy").write_text(
        "macros:\n  - id: NAMES\n    values: [b]\n    combine: merge\n"
        'rules:\n  - id: r\n    expression: exec.file.name == "zzz"\n'
        "    combine: override\n    override_options: {fields: [every]}\n    every: 5s\n"
    )
    (tmp_path / "c.policy").write_text('rules:\n  - id: r\n    expression: exec.file.name == "c"\n')
    policies = load(tmp_path)
    rule = policies.rules["r"]
    assert (rule.status, rule.every, rule.expression) == ("loaded", 5.0, "exec.file.name in NAMES")
    assert policies.errors == [
        f"{tmp_path}/c.policy: rule r: multiple definitions with the same ID (first in a.policy)"
    ]
    assert policies.ruleset.evaluate({"type": "exec", "exec": {"file": {"name": "b"}}}) == ["r"]


@pytest.mark.parametrize(
    ("actions", "error"),
    [
        ("[{kill: {signal: SIGKILL}, log: {}}]", "only one action can be specified"),
        ("[{kill: {}}]", "a valid signal has to be specified to the 'kill' action"),
        ("[{kill: {signal: SIGNOPE}}]", "unsupported signal 'SIGNOPE'"),
        ("[{set: {value: 1}}]", "variable name is empty"),
        ("[{set: {name: v}}]", "either 'value', 'field' or 'expression' must be specified"),
        ("[{log: {level: loud}}]", "a valid log level must be specified to the 'log' action"),
        ("[{coredump: {}}]", "the 'coredump' action is not supported by this agent"),
        ("[{set: {name: v, field: open.nope}}]", "unknown field 'open.nope' for 'set'"),
    ],
)
def test_bad_actions_fail_their_rule_with_datadogs_message(tmp_path, actions, error):
    (tmp_path / "t.policy").write_text(
        f'rules:\n  - id: r\n    expression: exec.file.name == "x"\n    actions: {actions}\n'
        '  - id: ok\n    expression: exec.file.name == "y"\n'
    )
    assert status(load(tmp_path)) == {"r": ("error", error), "ok": ("loaded", "")}


def test_kill_is_refused_at_load_when_enforcement_is_off(tmp_path):
    (tmp_path / "t.policy").write_text(
        'rules:\n  - id: r\n    expression: exec.file.name == "x"\n'
        "    actions: [{kill: {signal: SIGTERM}}]\n"
    )
    assert status(load(tmp_path, enforcement=False)) == {
        "r": ("error", "'kill' action is disabled globally")
    }


def test_action_filter_and_set_variable_types(tmp_path):
    (tmp_path / "t.policy").write_text(
        "rules:\n"
        '  - id: setter\n    expression: exec.file.name == "x"\n'
        "    actions:\n"
        "      - set: {name: names, field: exec.file.name, append: true, scope: container}\n"
        "        filter: process.uid == 0\n"
        '  - id: reader\n    expression: open.file.name in ["a"] && ${container.names} == "x"\n'
        '  - id: bad_filter\n    expression: exec.file.name == "y"\n'
        "    actions: [{log: {}, filter: 'process.nope == 1'}]\n"
    )
    got = status(load(tmp_path))
    assert got["setter"] == ("loaded", "")
    assert got["reader"] == ("loaded", "")
    assert got["bad_filter"][0] == "error"
    assert got["bad_filter"][1].startswith(
        "action filter: rule bad_filter.filter, line 1, column 1"
    )


def test_versions_and_durations():
    assert satisfies("7.61.0", ">= 7.61")
    assert not satisfies("7.60.9-rc.1", ">= 7.61")
    assert satisfies("0.1.0", "< 1, != 0.2")
    with pytest.raises(ConstraintError, match="invalid version constraint '>= x'"):
        satisfies("1.0", ">= x")
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration(2_000_000_000) == 2.0
    with pytest.raises(
        DurationError, match="expected a duration such as 10s, 5m or 1h30m, got '10 parsecs'"
    ):
        parse_duration("10 parsecs")
