"""XCCDF rules through OpenSCAP's ``oscap`` (Debian ``openscap-scanner``).

``oscap xccdf eval`` runs the rule's profile (restricted to its ``rule``/``rules``) on the
named SCAP data stream and writes XCCDF results, which are mapped to findings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from plugins.compliance.environment import HostEnv
from plugins.compliance.rego_eval import Finding

_RESULTS = {
    "pass": "passed",
    "fixed": "passed",
    "fail": "failed",
    "error": "error",
    "unknown": "error",
    "notapplicable": "skipped",
    "notchecked": "skipped",
    "notselected": "skipped",
    "informational": "skipped",
}
TIMEOUT = 600.0


class XccdfError(Exception):
    pass


def oscap_path() -> str | None:
    return shutil.which("oscap")


def datastream_path(env: HostEnv, bench_dir: str, names: Any) -> str:
    """The first data stream found among ``names`` (a name or a list of names).

    A relative name is looked up next to the benchmark (as Datadog ships them) and then in
    the SCAP Security Guide content directory (Debian ``ssg-*`` packages).
    """
    candidates = [str(n) for n in names] if isinstance(names, list) else [str(names or "")]
    for name in candidates:
        paths = (
            [name]
            if os.path.isabs(name)
            else [os.path.join(bench_dir, name), os.path.join(env.ssg_content_dir, name)]
        )
        for path in paths:
            if os.path.isfile(path):
                return path
    raise XccdfError(f"XCCDF data stream {' or '.join(candidates)} not found")


class Scans:
    """The oscap processes running now, so that a stop can end them instead of waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[str]] = set()
        self.stopped = False

    def run(self, cmd: list[str]) -> tuple[int, str]:
        """Run ``cmd``; its exit code and its output (stderr, or stdout when empty)."""
        with self._lock:
            if self.stopped:
                raise XccdfError("the agent is stopping")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self._procs.add(proc)
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise XccdfError(f"oscap did not finish within {TIMEOUT:g}s") from None
        finally:
            with self._lock:
                self._procs.discard(proc)
        return proc.returncode, err or out

    def kill_all(self) -> None:
        with self._lock:
            self.stopped = True
            for proc in self._procs:
                proc.kill()


def evaluate(
    env: HostEnv, bench_dir: str, spec: Mapping[str, Any], scans: Scans | None = None
) -> list[Finding]:
    """Run oscap for one xccdf input; one finding per XCCDF rule result."""
    scans = scans or Scans()
    oscap = oscap_path()
    if oscap is None:
        raise XccdfError("oscap is not installed (Debian package openscap-scanner)")
    stream = datastream_path(env, bench_dir, spec.get("name"))
    profile = str(spec.get("profile") or "")
    rules = [str(r) for r in (spec.get("rules") or [])]
    if spec.get("rule"):
        rules.insert(0, str(spec["rule"]))
    with tempfile.TemporaryDirectory(prefix="compliance-xccdf-") as tmp:
        results = os.path.join(tmp, "results.xml")
        cmd = [oscap, "xccdf", "eval", "--results", results]
        if profile:
            cmd += ["--profile", profile]
        for rule in rules:
            cmd += ["--rule", rule]
        cmd.append(stream)
        code, output = scans.run(cmd)
        # oscap exits 0 when all rules pass, 2 when some fail, 1 on an error.
        if code not in (0, 2) or not os.path.exists(results):
            lines = output.strip().splitlines()
            raise XccdfError(f"oscap failed with exit code {code}: {lines[-1] if lines else ''}")
        return parse_results(results, env.hostname)


def parse_results(path: str, hostname: str) -> list[Finding]:
    findings: list[Finding] = []
    for _event, elem in ET.iterparse(path):
        if not elem.tag.endswith("}rule-result"):
            continue
        idref = elem.get("idref", "")
        result = next((c.text or "" for c in elem if c.tag.endswith("}result")), "")
        mapped = _RESULTS.get(result.strip(), "error")
        if result.strip() == "notselected":
            continue
        data: dict[str, Any] = {"rule": idref, "result": result.strip()}
        if mapped == "error":
            data["error"] = f"oscap result {result.strip()}"
        findings.append(Finding(mapped, "host", f"{hostname}:{idref}", data))
        elem.clear()
    if not findings:
        raise XccdfError("oscap produced no rule result")
    return findings
