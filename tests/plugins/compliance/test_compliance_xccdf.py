"""XCCDF rules through OpenSCAP's oscap, and the shipped Debian 12 benchmark."""

from __future__ import annotations

import os
import shutil

import pytest

from plugins.compliance.benchmark import load_benchmark
from plugins.compliance.checker import Checker, default_rule_filter
from plugins.compliance.environment import HostEnv
from plugins.compliance.rego_eval import Finding
from plugins.compliance.service import builtin_benchmarks_dir
from plugins.compliance.xccdf_eval import XccdfError, datastream_path, parse_results

RESULTS = """<?xml version="1.0"?>
<Benchmark xmlns="http://checklists.nist.gov/xccdf/1.2">
 <TestResult id="t">
  <rule-result idref="r_pass"><result>pass</result></rule-result>
  <rule-result idref="r_fail"><result>fail</result></rule-result>
  <rule-result idref="r_err"><result>error</result></rule-result>
  <rule-result idref="r_unknown"><result>unknown</result></rule-result>
  <rule-result idref="r_na"><result>notapplicable</result></rule-result>
  <rule-result idref="r_fixed"><result>fixed</result></rule-result>
  <rule-result idref="r_unselected"><result>notselected</result></rule-result>
 </TestResult>
</Benchmark>
"""


def test_compliance_xccdf_result_mapping(tmp_path):
    path = tmp_path / "results.xml"
    path.write_text(RESULTS)
    assert parse_results(str(path), "h") == [
        Finding("passed", "host", "h:r_pass", {"rule": "r_pass", "result": "pass"}),
        Finding("failed", "host", "h:r_fail", {"rule": "r_fail", "result": "fail"}),
        Finding(
            "error",
            "host",
            "h:r_err",
            {"rule": "r_err", "result": "error", "error": "oscap result error"},
        ),
        Finding(
            "error",
            "host",
            "h:r_unknown",
            {"rule": "r_unknown", "result": "unknown", "error": "oscap result unknown"},
        ),
        Finding("skipped", "host", "h:r_na", {"rule": "r_na", "result": "notapplicable"}),
        Finding("passed", "host", "h:r_fixed", {"rule": "r_fixed", "result": "fixed"}),
    ]


def test_compliance_xccdf_datastream_lookup(tmp_path):
    env = HostEnv("h", ssg_content_dir=str(tmp_path / "ssg"))
    (tmp_path / "ssg").mkdir()
    (tmp_path / "ssg" / "b.xml").write_text("x")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "a.xml").write_text("x")
    assert datastream_path(env, str(tmp_path / "bench"), "a.xml") == str(
        tmp_path / "bench" / "a.xml"
    )
    assert datastream_path(env, str(tmp_path / "bench"), ["none.xml", "b.xml"]) == str(
        tmp_path / "ssg" / "b.xml"
    )
    with pytest.raises(XccdfError) as info:
        datastream_path(env, str(tmp_path / "bench"), ["x.xml", "y.xml"])
    assert str(info.value) == "XCCDF data stream x.xml or y.xml not found"


def shipped():
    return load_benchmark(os.path.join(builtin_benchmarks_dir(), "debian12-ssg.yaml"))


def test_compliance_xccdf_benchmark_enabled_only_with_oscap_on_debian12():
    bench = shipped()
    rule = bench.rules[0]
    assert rule.is_xccdf
    debian12 = HostEnv("h", os_release={"id": "debian", "version_id": "12"}, xccdf_enabled=True)
    assert default_rule_filter(debian12)(rule)
    assert not default_rule_filter(HostEnv("h", os_release={"id": "debian", "version_id": "12"}))(
        rule
    )
    assert not default_rule_filter(HostEnv("h", os_release={"id": "ubuntu"}, xccdf_enabled=True))(
        rule
    )


def test_compliance_xccdf_real_oscap_run():
    if shutil.which("oscap") is None or not os.path.isdir("/usr/share/xml/scap/ssg/content"):
        pytest.skip(
            "oscap or the SCAP Security Guide content is not installed "
            "(apt-get install openscap-scanner ssg-debian)"
        )
    bench = shipped()
    rule = bench.rules[0]
    env = HostEnv("h", xccdf_enabled=True)
    findings = Checker(env, "7", 3600).findings(bench, rule)
    wanted = sorted(rule.inputs[0].spec["rules"])
    assert sorted(f.data["rule"] for f in findings) == wanted
    mapping = {
        "pass": "passed",
        "fail": "failed",
        "notapplicable": "skipped",
        "error": "error",
        "unknown": "error",
    }
    for f in findings:
        assert (f.resource_type, f.resource_id) == ("host", "h:" + f.data["rule"])
        assert f.result == mapping[f.data["result"]], f


def test_compliance_xccdf_missing_datastream_is_an_error(tmp_path):
    if shutil.which("oscap") is None:
        pytest.skip("oscap is not installed (apt-get install openscap-scanner)")
    (tmp_path / "x.yaml").write_text(
        "framework: fw\nrules:\n  - id: x1\n    input:\n"
        "      - xccdf: {name: nope-ds.xml, profile: p}\n"
    )
    bench = load_benchmark(str(tmp_path / "x.yaml"))
    env = HostEnv("h", ssg_content_dir=str(tmp_path), xccdf_enabled=True)
    assert Checker(env, "7", 1).findings(bench, bench.rules[0]) == [
        Finding("error", "host", "h", {"error": "XCCDF data stream nope-ds.xml not found"})
    ]


def test_compliance_xccdf_stop_kills_running_scan():
    import threading
    import time

    from plugins.compliance.xccdf_eval import Scans

    scans = Scans()
    results = []
    thread = threading.Thread(target=lambda: results.append(scans.run(["sleep", "30"])))
    started = time.monotonic()
    thread.start()
    while not scans._procs and time.monotonic() - started < 5:
        time.sleep(0.01)
    scans.kill_all()
    thread.join(5)
    assert results == [(-9, "")]
    assert time.monotonic() - started < 5
    with pytest.raises(XccdfError) as info:
        scans.run(["true"])
    assert str(info.value) == "the agent is stopping"
