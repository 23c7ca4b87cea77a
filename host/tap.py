"""The twistd/twist entry: ``twistd security-agent -c FILE`` and ``twist security-agent -c FILE``.

``makeService`` only builds (config, plugins, the service object): twistd calls it before it
daemonizes, so sockets and threads start later, in ``AgentService.startService``. A start-up
error is printed as one line and exits 1 before twistd forks, so the operator sees it.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application import service
from twisted.python import usage

from host.bootstrap import AgentOptions, StartupError, build_agent


class Options(usage.Options):
    synopsis = "[-c FILE]... [--sysprobe-config PATH] [--strict-plugins]"
    longdesc = "Runs the security agent: compliance, runtime security and checks, as plugins."
    optFlags = [  # noqa: RUF012 - Twisted reads these class attributes
        ["strict-plugins", None, "Fail the start when any plugin fails to load."],
    ]
    optParameters = [  # noqa: RUF012
        ["sysprobe-config", None, None, "Path to system-probe.yaml (or its directory)."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["cfgpath"] = []

    def opt_cfgpath(self, path: str) -> None:
        """Path to a config file; repeat to merge several (later ones win)."""
        self["cfgpath"].append(path)

    opt_c = opt_cfgpath

    def agent_options(self) -> AgentOptions:
        return AgentOptions(
            cfgpaths=list(self["cfgpath"]) or None,
            sysprobe_config=self["sysprobe-config"],
            strict_plugins=bool(self["strict-plugins"]),
        )


def makeService(options: Options) -> service.IService:
    from twisted.internet import reactor

    from host.lifecycle import AgentService
    from host.logsetup import attach_agent_logging

    try:
        agent = build_agent(options.agent_options(), reactor)
    except StartupError as exc:
        sys.stderr.write(f"security-agent: {exc}\n")
        raise SystemExit(1) from None
    svc: Any = AgentService(agent)
    # twistd and twist already log to their own file or console; add the agent's log file.
    attach_agent_logging(agent, console=False)
    return svc  # type: ignore[no-any-return]
