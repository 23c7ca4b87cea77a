"""Rule ``filters``: SECL expressions (:data:`plugins.secl.FILTER_MODEL`) over host facts.

A benchmark rule may carry ``filters: ['os.id == "debian" && os.version_id in ["11", "12"]']``;
the rule runs only when every filter matches the facts of the evaluated host. The facts come
from that host's ``os-release`` (under ``compliance_config.host_root``, read by
:meth:`HostEnv.load_os_release`) and from ``uname`` of the running kernel, which a container
shares with its host.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from plugins.compliance.environment import HostEnv
from plugins.secl import FILTER_MODEL, compile_expression


def host_facts(
    env: HostEnv,
    uname: Callable[[], os.uname_result] = os.uname,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, Any]:
    """The FILTER_MODEL facts of ``env``: OS identity, architecture, kernel, host name, and
    the names (never the values, which may be secrets) of this process's environment."""
    system = uname()
    major, minor = kernel_version(system.release)
    return {
        "os": {
            "name": system.sysname.lower(),
            "id": env.os_release.get("id", ""),
            "version_id": env.os_release.get("version_id", ""),
            "platform_id": env.os_release.get("platform_id", ""),
            "arch": system.machine,
            "kernel": system.release,
        },
        "kernel": {"major": major, "minor": minor},
        "hostname": env.hostname,
        "envs": sorted(environ),
    }


def kernel_version(release: str) -> tuple[int, int]:
    """``(major, minor)`` of a kernel release such as ``6.1.0-18-amd64`` (0 when missing)."""
    numbers: list[int] = []
    for part in release.split(".")[:2]:
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        numbers.append(int(digits or 0))
    numbers += [0] * (2 - len(numbers))
    return numbers[0], numbers[1]


def filter_matches(text: str, facts: Mapping[str, Any], rule_id: str) -> bool:
    """True when filter ``text`` of rule ``rule_id`` holds for ``facts``.

    Raises :class:`plugins.secl.SECLError` when the filter does not compile; its message names
    the rule, line and column (``rule r1, line 1, column 9: expected a value, ...``).
    """
    return compile_expression(text, model=FILTER_MODEL, rule_id=rule_id).matches(facts)
