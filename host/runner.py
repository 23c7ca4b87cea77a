"""``security-agent start``: run the agent service in the foreground on the global reactor."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from host.bootstrap import AgentOptions, StartupError, build_agent


def write_pidfile(path: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(p)


def run_foreground(options: AgentOptions) -> int:
    from twisted.internet import reactor

    from host.lifecycle import AgentService
    from host.logsetup import begin_agent_logging

    try:
        agent = build_agent(options, reactor)
    except StartupError as exc:
        sys.stderr.write(f"security-agent: {exc}\n")
        return 1
    begin_agent_logging(agent)
    if options.pidfile:
        write_pidfile(options.pidfile)
    svc = AgentService(agent)
    reactor.callWhenRunning(svc.startService)
    reactor.addSystemEventTrigger("before", "shutdown", svc.stopService)
    try:
        reactor.run()
    finally:
        if options.pidfile:
            Path(options.pidfile).unlink(missing_ok=True)
        if agent.logs is not None:
            agent.logs.close()
    return agent.exit_code
