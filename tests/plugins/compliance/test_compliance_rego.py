"""Rego evaluation: the datadog helpers, parse_octal, status mapping, de-duplication, errors."""

from __future__ import annotations

import json

import pytest

from plugins.compliance import rego_eval
from plugins.compliance.benchmark import load_benchmark
from plugins.compliance.checker import Checker
from plugins.compliance.environment import HostEnv
from plugins.compliance.rego_eval import Finding, RegoEvalError, map_results


def run_rule(
    tmp_path,
    rego: str,
    inputs: str = "      - constants: {a: 1}\n",
    imports: dict | None = None,
    rule_id="r1",
):
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir(exist_ok=True)
    imports = imports or {}
    imports_line = f"    imports: {json.dumps(list(imports))}\n" if imports else ""
    (bench_dir / "b.yaml").write_text(
        f"name: B\nframework: fw\nversion: '1'\nrules:\n  - id: {rule_id}\n"
        f"    input:\n{inputs}{imports_line}"
    )
    if rego is not None:
        (bench_dir / f"{rule_id}.rego").write_text(rego)
    for name, text in imports.items():
        (bench_dir / name).write_text(text)
    bench = load_benchmark(str(bench_dir / "b.yaml"))
    env = HostEnv(hostname="h1", host_root=str(tmp_path))
    return Checker(env, "7.99.0", 1200).findings(bench, bench.rules[0])


V0_RULE = """package datadog

import data.datadog as dd

findings[f] {
\tinput.constants.a == 1
\tf := dd.passed_finding("thing", "t1", {"mode": parse_octal("0640")})
}
"""


def test_compliance_rego_v0_rule_and_parse_octal(tmp_path):
    assert run_rule(tmp_path, V0_RULE) == [Finding("passed", "thing", "t1", {"mode": 416})]


def test_compliance_rego_imports_and_context(tmp_path):
    helper = (
        "package datadog\n\n"
        'resource_id := sprintf("%s/%s", [input.context.hostname, input.context.ruleID])\n'
    )
    rule = (
        "package datadog\nimport data.datadog as dd\n"
        "findings contains "
        'dd.failing_finding("host", resource_id, {"input": input.context.input})\n'
    )
    got = run_rule(tmp_path, rule, imports={"helpers.rego": helper})
    assert got == [Finding("failed", "host", "h1/r1", {"input": {"constants": {"a": 1}}})]


def test_compliance_rego_parse_octal_in_another_package(tmp_path):
    lib = 'package lib\n\nmode := parse_octal("755")\n'
    rule = (
        "package datadog\nimport data.datadog as dd\nimport data.lib\n"
        'findings contains dd.passed_finding("x", "y", {"m": lib.mode})\n'
    )
    assert run_rule(tmp_path, rule, imports={"lib.rego": lib}) == [
        Finding("passed", "x", "y", {"m": 493})
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("passed", "passed"),
        ("pass", "passed"),
        ("failing", "failed"),
        ("fail", "failed"),
        ("skipped", "skipped"),
    ],
)
def test_compliance_rego_status_mapping(status, expected):
    raw = [{"status": status, "resource_type": "t", "resource_id": "i", "data": {"k": 1}}]
    assert map_results(raw) == [Finding(expected, "t", "i", {"k": 1})]


def test_compliance_rego_error_status_takes_message():
    raw = [
        {"status": "err", "resource_type": "t", "resource_id": "a", "data": {"error": "boom"}},
        {"status": "error", "resource_type": "t", "resource_id": "b", "data": {}},
        {"status": "maybe", "resource_type": "t", "resource_id": "c", "data": {}},
    ]
    assert map_results(raw) == [
        Finding("error", "t", "a", {"error": "boom"}),
        Finding("error", "t", "b", {"error": "unknown"}),
        Finding("error", "t", "c", {"error": 'rego result invalid: bad status "maybe"'}),
    ]


def test_compliance_rego_dedup_per_resource_keeps_most_severe():
    raw = [
        {"status": "passed", "resource_type": "file", "resource_id": "/a", "data": {}},
        {"status": "failing", "resource_type": "file", "resource_id": "/a", "data": {"why": 1}},
        {"status": "passed", "resource_type": "file", "resource_id": "/b", "data": {}},
        {"status": "passed", "resource_type": "file", "resource_id": "/b", "data": {}},
    ]
    assert map_results(raw) == [
        Finding("failed", "file", "/a", {"why": 1}),
        Finding("passed", "file", "/b", {}),
    ]


def test_compliance_rego_empty_results_is_an_error(tmp_path):
    rule = "package datadog\nfindings contains f if {\n\tinput.constants.a == 2\n\tf := 1\n}\n"
    assert run_rule(tmp_path, rule) == [
        Finding("error", "host", "h1", {"error": "empty results set"})
    ]


def test_compliance_rego_no_findings_rule_is_an_error(tmp_path):
    rule = "package datadog\nsomething_else := true\n"
    assert run_rule(tmp_path, rule) == [
        Finding("error", "host", "h1", {"error": "empty results set"})
    ]


def test_compliance_rego_compile_error_names_module_and_line(tmp_path):
    rule = "package datadog\n\nfindings contains f if {\n\tf := \n}\n"
    got = run_rule(tmp_path, rule)
    assert got == [
        Finding(
            "error",
            "host",
            "h1",
            {"error": "rego compile error: r1.rego:4: Invalid assignment operator"},
        )
    ]


def test_compliance_rego_missing_module_and_import(tmp_path):
    assert run_rule(tmp_path, None) == [
        Finding("error", "host", "h1", {"error": "no rego module for rule r1: expected r1.rego"})
    ]
    got = run_rule(tmp_path, V0_RULE, imports={})
    assert got[0].result == "passed"
    bench_dir = tmp_path / "bench"
    (bench_dir / "b.yaml").write_text(
        "name: B\nframework: fw\nrules:\n  - id: r1\n    input:\n      - constants: {a: 1}\n"
        "    imports: [gone.rego]\n"
    )
    bench = load_benchmark(str(bench_dir / "b.yaml"))
    got = Checker(HostEnv("h1", str(tmp_path)), "7", 1).findings(bench, bench.rules[0])
    assert got == [
        Finding("error", "host", "h1", {"error": f"rego import gone.rego not found in {bench_dir}"})
    ]


def test_compliance_rego_strings_with_control_characters_round_trip():
    interp = rego_eval.prepare(
        {
            "datadog_helpers.rego": rego_eval.ModuleCache().helpers,
            "r.rego": "package datadog\nimport data.datadog as dd\n"
            'findings contains dd.passed_finding("f", "x", {"c": input.c})\n',
        }
    )
    text = 'line1\nline2\t"quoted" \\ back é \x01'
    assert rego_eval.query_findings(interp, {"c": text})[0]["data"] == {"c": text}


def test_compliance_rego_non_set_findings_is_invalid():
    interp = rego_eval.prepare({"r.rego": "package datadog\nfindings := 3\n"})
    with pytest.raises(RegoEvalError) as info:
        rego_eval.query_findings(interp, {})
    assert str(info.value) == "rego result invalid: findings is int, not a set"
