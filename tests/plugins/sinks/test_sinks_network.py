"""Run the trial cases of ``sinks_network_cases.py`` (real reactor, real sockets), one
process per case; see that module for why."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CASES = HERE / "sinks_network_cases.py"


def _case_names() -> list[str]:
    tree = ast.parse(CASES.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.endswith("Tests"):
            for item in node.body:
                if isinstance(item, ast.AsyncFunctionDef | ast.FunctionDef) and (
                    item.name.startswith("test_")
                ):
                    names.append(f"{node.name}.{item.name}")
    return names


@pytest.mark.parametrize("case", _case_names())
def test_network_case(case, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(HERE)])
    proc = subprocess.run(
        [sys.executable, "-m", "twisted.trial", f"sinks_network_cases.{case}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "PASSED (successes=1)" in output, output
