"""Run an agent with the ipc_api plugin on the real reactor, for the real-socket tests.

    python ipc_api_serve.py CONFIG READY_FILE

Like ``security-agent start``, with entry points given here instead of installed: the
ipc_api plugin, a security component (so the agent stays up), a plugin adding routes (one
of them a duplicate of a built-in path) and stand-ins for the flare, scrubber and workload
store libraries that other plugins provide. When the API listens, the bound port is written
to READY_FILE. The exit code is the agent's.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

from support import entry_point, plugin_module
from twisted.internet import reactor
from twisted.logger import Logger

import plugins.ipc_api
from host import ApiResponse, ApiRoute, PluginSpec
from host.bootstrap import AgentOptions, StartupError, build_agent
from host.lifecycle import AgentService
from host.logsetup import begin_agent_logging


def _fake_libraries(run_dir: Path) -> None:
    flare = types.ModuleType("plugins.flare")

    def create_archive(agent, local=False):
        if (run_dir / "flare-fails").exists():
            raise RuntimeError("disk full")
        path = run_dir / f"flare-{'local' if local else 'agent'}.zip"
        path.write_bytes(b"PK")
        return path

    flare.create_archive = create_archive
    scrubber = types.ModuleType("plugins.scrubber")
    scrubber.scrub_yaml = lambda text: (
        "\n".join(
            line.split(":")[0] + ': "********"' if "api_key" in line else line
            for line in text.splitlines()
        )
        + "\n"
    )
    workloadmeta = types.ModuleType("plugins.workloadmeta")

    class WorkloadStore:
        def __init__(self, proc_root):
            self.proc_root = proc_root
            self.refreshes = 0

        def refresh(self):
            self.refreshes += 1

        def dump(self, verbose):
            entity = {"pid": 1, "name": "init"}
            if verbose:
                entity["cmdline"] = ["/sbin/init"]
            return {"entities": {"process": {"infos": {"1": entity}}}, "refreshes": self.refreshes}

    workloadmeta.WorkloadStore = WorkloadStore
    for name, module in (
        ("plugins.flare", flare),
        ("plugins.scrubber", scrubber),
        ("plugins.workloadmeta", workloadmeta),
    ):
        sys.modules[name] = module


def _security_plugin():
    return plugin_module(
        "ipc_test_security",
        security_agent_plugin_spec=lambda agent: PluginSpec(interval=3600, security_component=True),
        security_agent_run=lambda agent: None,
    )


def _routes_plugin():
    log = Logger(namespace="ipc_test_routes")

    def debug_line(request):
        log.debug("probe debug line {n}", n=request.arg("n", "0"))
        return ApiResponse(200, {"logged": True})

    async def echo(request):
        return ApiResponse(200, {"name": request.params["name"], "body": request.body.decode()})

    def boom(request):
        raise RuntimeError("handler exploded")

    def routes(agent):
        return [
            ApiRoute("/agent/test/debug-line", ("GET",), debug_line),
            ApiRoute("/agent/test/echo/{name}", ("POST",), echo),
            ApiRoute("/agent/test/boom", ("GET",), boom),
            ApiRoute("/agent/hostname", ("GET",), lambda r: ApiResponse(200, "hijacked")),
        ]

    return plugin_module("ipc_test_routes", security_agent_api_routes=routes)


def main(config: str, ready_file: str) -> int:
    _fake_libraries(Path(config).parent)
    eps = [
        entry_point("ipc_api", plugins.ipc_api),
        entry_point("ipc_test_security", _security_plugin()),
        entry_point("ipc_test_routes", _routes_plugin()),
    ]
    try:
        agent = build_agent(AgentOptions(cfgpaths=[config]), reactor, entry_points=lambda: eps)
    except StartupError as exc:
        sys.stderr.write(f"security-agent: {exc}\n")
        return 1
    begin_agent_logging(agent)
    svc = AgentService(agent)

    def announce() -> None:
        server = plugins.ipc_api.server_of(agent)
        if svc.ready and server is not None:
            # Renamed into place: the test polls for the file and must never read half of it.
            tmp = Path(ready_file + ".tmp")
            tmp.write_text(json.dumps({"port": server.bound_port}))
            tmp.replace(ready_file)
        else:
            reactor.callLater(0.02, announce)

    reactor.callWhenRunning(svc.startService)
    reactor.callWhenRunning(announce)
    reactor.addSystemEventTrigger("before", "shutdown", svc.stopService)
    reactor.run()
    if agent.logs is not None:
        agent.logs.close()
    return agent.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
