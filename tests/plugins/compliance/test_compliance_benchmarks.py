"""Loading benchmark files: the format, Datadog's validation messages, the rule filter."""

from __future__ import annotations

import os

import pytest

from plugins.compliance.benchmark import BenchmarkError, load_benchmark, load_benchmarks
from plugins.compliance.checker import Checker, default_rule_filter
from plugins.compliance.environment import HostEnv
from plugins.compliance.filters import filter_matches, host_facts, kernel_version
from plugins.secl import SECLError

GOOD = """\
schema: {version: 1.0.0}
name: Good
framework: good-fw
version: 2.0.0
tags: [a, b]
rules:
  - id: g1
    description: first
    scope: [none]
    input:
      - file: {path: /etc/x, parser: json}
        tag: x
      - constants: {k: v}
    imports: [h.rego]
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def rule_error(tmp_path, inputs):
    path = write(tmp_path, "b.yaml", f"framework: fw\nrules:\n  - id: r1\n    input:\n{inputs}")
    return load_benchmark(path).rules[0].error


def test_compliance_benchmark_fields(tmp_path):
    bench = load_benchmark(write(tmp_path, "good.yaml", GOOD))
    assert (bench.name, bench.framework, bench.version, bench.tags) == (
        "Good",
        "good-fw",
        "2.0.0",
        ["a", "b"],
    )
    rule = bench.rules[0]
    assert (rule.id, rule.description, rule.scope, rule.imports, rule.error) == (
        "g1",
        "first",
        ["none"],
        ["h.rego"],
        None,
    )
    assert [(i.kind, i.tag, i.array, dict(i.spec)) for i in rule.inputs] == [
        ("file", "x", False, {"path": "/etc/x", "parser": "json"}),
        ("constants", "constants", False, {"k": "v"}),
    ]
    assert rule.evaluator == "rego"


def test_compliance_benchmark_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.yaml", "framework: fw\nrules:\n  - id: [unclosed\n")
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(path)
    assert str(info.value) == f"{path}:4: invalid YAML: expected ',' or ']', but got '<stream end>'"


def test_compliance_benchmark_empty_rule_set(tmp_path):
    path = write(tmp_path, "empty.yaml", "framework: fw\nrules: []\n")
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(path)
    assert str(info.value) == f"{path}: bad benchmark: empty rule set"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("      []\n", "missing inputs from rule r1"),
        ("      - nosuch: {a: 1}\n", "bad input in rule r1: unknown input type nosuch"),
        (
            "      - docker: {kind: info}\n",
            "input of types kubeApiserver docker and audit have to be arrays",
        ),
        (
            "      - audit: {path: /x}\n",
            "input of types kubeApiserver docker and audit have to be arrays",
        ),
        ("      - file: {path: /etc/x}\n        type: list\n", "bad input results `array`"),
        (
            "      - file: {path: /etc/x}\n        type: array\n",
            "file input results defined as array has to be a glob path",
        ),
    ],
)
def test_compliance_benchmark_bad_rule_inputs(tmp_path, inputs, message):
    assert rule_error(tmp_path, inputs) == message


def test_compliance_bad_files_reported_other_rules_still_run(tmp_path):
    write(tmp_path, "a-good.yaml", GOOD)
    write(tmp_path, "b-bad.yaml", "rules: [: :\n")
    write(tmp_path, "c-empty.yaml", "framework: fw\nrules: []\n")
    write(
        tmp_path,
        "d-norule.yaml",
        "framework: fw2\nrules:\n  - id: n1\n  - id: n2\n    input: [{constants: {}}]\n",
    )
    write(tmp_path, "notes.txt", "not a benchmark")
    result = load_benchmarks([str(tmp_path), str(tmp_path / "missing")])
    assert [b.framework for b in result.benchmarks] == ["good-fw", "fw2"]
    assert result.errors == [
        f"{tmp_path}/b-bad.yaml:1: invalid YAML: expected the node content, but found ':'",
        f"{tmp_path}/c-empty.yaml: bad benchmark: empty rule set",
    ]
    fw2 = result.benchmarks[1]
    env = HostEnv("h", str(tmp_path))
    checker = Checker(env, "7", 60)
    assert [
        (e["agent_rule_id"], e["result"], e["data"]) for e in checker.events(fw2, fw2.rules[0])
    ] == [("n1", "error", {"error": "missing inputs from rule n1"})]


def scoped(tmp_path, scope, extra=""):
    return load_benchmark(
        write(
            tmp_path,
            "s.yaml",
            f"framework: fw\nrules:\n  - id: s1\n    scope: [{scope}]\n"
            f"{extra}    input: [{{constants: {{}}}}]\n",
        )
    ).rules[0]


def test_compliance_default_rule_filter_scopes(tmp_path):
    env = HostEnv("h", str(tmp_path))
    keep = default_rule_filter(env)
    assert keep(scoped(tmp_path, "none"))
    assert keep(scoped(tmp_path, "docker"))
    assert not keep(scoped(tmp_path, "kubernetesNode"))
    assert not keep(scoped(tmp_path, "kubernetesCluster"))
    env.kubernetes = True
    keep = default_rule_filter(env)
    assert keep(scoped(tmp_path, "kubernetesNode"))
    assert not keep(scoped(tmp_path, "none", "    skipOnKubernetes: true\n"))


def test_compliance_default_rule_filter_xccdf_and_filters(tmp_path):
    env = HostEnv("h", str(tmp_path), os_release={"id": "debian", "version_id": "12"})
    xccdf = load_benchmark(
        write(
            tmp_path,
            "x.yaml",
            "framework: fw\nrules:\n  - id: x1\n    input: [{xccdf: {name: a.xml}}]\n",
        )
    ).rules[0]
    assert xccdf.is_xccdf
    assert xccdf.evaluator == "xccdf"
    assert not default_rule_filter(env)(xccdf)
    env.xccdf_enabled = True
    assert default_rule_filter(env)(xccdf)
    deb = scoped(
        tmp_path, "none", '    filters: [\'os.id == "debian" && os.version_id in ["11", "12"]\']\n'
    )
    ubuntu = scoped(tmp_path, "none", "    filters: ['os.id == \"ubuntu\"']\n")
    assert default_rule_filter(env)(deb)
    assert not default_rule_filter(env)(ubuntu)
    broken = scoped(tmp_path, "none", "    filters: ['os.id ==']\n")
    assert default_rule_filter(env)(broken)
    assert broken.error == (
        "bad filter: rule s1, line 1, column 9: expected a value, a field or '(', "
        "got the end of the expression"
    )


DEBIAN_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
"""


def fake_uname():
    return os.uname_result(("Linux", "box", "6.1.0-18-amd64", "#1 SMP", "x86_64"))


def debian_facts(tmp_path):
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc" / "os-release").write_text(DEBIAN_RELEASE)
    env = HostEnv("box", str(tmp_path))
    env.load_os_release()
    return host_facts(env, uname=fake_uname, environ={"PATH": "/bin", "HOME": "/root"})


def test_compliance_filter_facts_from_os_release_under_host_root_and_uname(tmp_path):
    assert debian_facts(tmp_path) == {
        "os": {
            "name": "linux",
            "id": "debian",
            "version_id": "12",
            "platform_id": "",
            "arch": "x86_64",
            "kernel": "6.1.0-18-amd64",
        },
        "kernel": {"major": 6, "minor": 1},
        "hostname": "box",
        "envs": ["HOME", "PATH"],
    }


def test_compliance_filter_facts_fall_back_to_usr_lib_os_release(tmp_path):
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "os-release").write_text(
        'ID="rhel"\nVERSION_ID="9.3"\nPLATFORM_ID="platform:el9"\n'
    )
    env = HostEnv("box", str(tmp_path))
    env.load_os_release()
    facts = host_facts(env, uname=fake_uname, environ={})
    assert facts["os"]["id"] == "rhel"
    assert facts["os"]["version_id"] == "9.3"
    assert facts["os"]["platform_id"] == "platform:el9"
    assert facts["envs"] == []


@pytest.mark.parametrize(
    ("release", "expected"),
    [("6.1.0-18-amd64", (6, 1)), ("5.15.0-1051-aws", (5, 15)), ("4.19+", (4, 19)), ("7", (7, 0))],
)
def test_compliance_filter_kernel_version(release, expected):
    assert kernel_version(release) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('os.id == "debian"', True),
        ('os.id != "debian"', False),
        ('os.id == "ubuntu"', False),
        ('os == "linux"', True),
        ('os.version_id == "12"', True),
        ('os.version_id != "11"', True),
        ('os.version_id =~ "1*"', True),
        ('os.version_id =~ "11*"', False),
        ('os.version_id !~ "9*"', True),
        ('os.id == "debian" && os.version_id in ["11", "12"]', True),
        ('os.version_id in ["10", "11"]', False),
        ('os.id not in ["rhel", "centos"]', True),
        ('os.id in ["rhel", "centos"] || os.arch == "x86_64"', True),
        ('!(os.id == "debian") || os.arch == "aarch64"', False),
        ('os.id == "debian" and not os.is_amazon_linux', True),
        ("kernel.version.major >= 5 && kernel.version.minor < 10", True),
        ("kernel.version.major > 6", False),
        ('os.kernel =~ "6.1.*"', True),
        ('hostname == "box"', True),
        ('envs in ["HOME"]', True),
        ('envs in ["DD_API_KEY"]', False),
    ],
)
def test_compliance_filters(tmp_path, text, expected):
    assert filter_matches(text, debian_facts(tmp_path), "r1") is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "os.id ==",
            "rule r1, line 1, column 9: expected a value, a field or '(', "
            "got the end of the expression",
        ),
        (
            'process.name == "x"',
            "rule r1, line 1, column 1: expected a field, constant or macro, "
            "got unknown identifier 'process.name'",
        ),
        (
            'os.version_id >= "11"',
            "rule r1, line 1, column 1: expected an int, duration or time operand for '>=', "
            "got string field 'os.version_id'",
        ),
        (
            "os.id == 12",
            "rule r1, line 1, column 10: expected a string value after '==' to compare with "
            "string field 'os.id', got int 12",
        ),
    ],
)
def test_compliance_filter_errors(tmp_path, text, message):
    with pytest.raises(SECLError) as info:
        filter_matches(text, debian_facts(tmp_path), "r1")
    assert str(info.value) == message
