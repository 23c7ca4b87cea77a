"""The network sinks against a real Twisted intake on 127.0.0.1, through the host.

Trial test cases: each runs the real reactor, real sockets and treq, with the agent built by
``make_agent`` and started by ``AgentService``. ``test_sinks_network.py`` runs each one with
``python -m twisted.trial`` in a process of its own, so that they behave the same whether or
not a pytest plugin (pytest-twisted) already drives the reactor of the pytest process.
"""

from __future__ import annotations

import json
import pathlib
import time

from sinks_intake import IntakeResource
from sinks_support import producer
from support import entry_point, make_agent
from twisted.internet import reactor, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest
from twisted.web import server

import plugins.sinks
from host.lifecycle import AgentService


class IntakeCase(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.intake = IntakeResource()
        self.site = server.Site(self.intake)
        self.site.timeOut = None
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.port_number = self.port.getHost().port
        self.logs = []
        observer = self.logs.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    async def tearDown(self):
        self.intake.release_held()
        if self.port is not None:
            await self.port.stopListening()
        # let both ends of closed connections go away before trial checks the reactor
        await task.deferLater(reactor, 0.05, lambda: None)

    def messages(self):
        return [formatEvent(e) for e in self.logs]

    def config(self, extra=""):
        endpoint = (
            f"    logs_dd_url: 127.0.0.1:{self.port_number}\n"
            "    logs_no_ssl: true\n"
            "    batch_wait: 0.05\n"
            "    batch_max_size: 10\n"
        )
        return (
            "api_key: 0123456789abcdef\n"
            f"dd_url: http://127.0.0.1:{self.port_number}\n"
            "runtime_security_config:\n  endpoints:\n" + endpoint + "compliance_config:\n"
            "  endpoints:\n" + endpoint + "sinks:\n"
            "  file:\n    enabled: false\n"
            "  datadog:\n    metrics_batch_wait: 0.05s\n"
            "  request_timeout: 0.3s\n"
            "  flush_timeout: 3s\n"
            "  spool:\n    fsync_interval: 0.1s\n"
            "  retry:\n    initial_backoff: 0.02s\n    max_backoff: 0.1s\n" + extra
        )

    async def start_agent(self, config, path=None):
        if path is None:
            path = pathlib.Path(self.mktemp())
            path.mkdir(parents=True)
        agent = make_agent(
            reactor, [entry_point("sinks", plugins.sinks), producer()], config, tmp_path=path
        )
        service = AgentService(agent, install_signal_handlers=False)
        service.startService()
        self.addCleanup(service.stopService)
        await service._starting
        return agent, service

    async def wait_for(self, predicate, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}")
            await task.deferLater(reactor, 0.01, lambda: None)

    async def relisten(self):
        await self.port.stopListening()
        self.port = None
        await task.deferLater(reactor, 0.3, lambda: None)
        self.port = reactor.listenTCP(self.port_number, self.site, interface="127.0.0.1")


class DatadogSinkTests(IntakeCase):
    async def test_events_reach_the_logs_intake_and_metrics_the_series_api(self):
        agent, _service = await self.start_agent(self.config())
        runtime = [agent.events.emit("runtime", {"rule_id": f"r{i}"}) for i in range(12)]
        compliance = agent.events.emit("compliance", {"result": "failed"})
        agent.events.emit("metrics", {"metric": "datadog.security_agent.up", "value": 1})
        wanted = {e.id for e in [*runtime, compliance]}
        await self.wait_for(
            lambda: (
                wanted <= set(self.intake.received_ids())
                and any(r["path"] == "/api/v1/series" for r in self.intake.requests)
            ),
            "every event at the intake",
        )
        logs = [r for r in self.intake.requests if r["path"] == "/api/v2/logs"]
        headers = logs[0]["headers"]
        assert headers["dd-api-key"] == "0123456789abcdef"
        assert headers["content-encoding"] == "gzip"
        assert headers["content-type"] == "application/json"
        assert headers["dd-protocol"] == "agent-json"
        origins = sorted(r["headers"]["dd-evp-origin"] for r in logs)
        assert "cloud-workload-security" in origins
        assert "agent" in origins
        assert max(len(r["ids"]) for r in logs) == 10  # batch_max_size
        entry = next(e for r in logs for e in r["body"] if e["event_id"] == compliance.id)
        assert entry == {
            "message": '{"result":"failed"}',
            "status": "info",
            "timestamp": int(compliance.timestamp * 1000),
            "hostname": agent.hostname,
            "service": "compliance-agent",
            "ddsource": "compliance-agent",
            "ddtags": f"host:{agent.hostname}",
            "event_id": compliance.id,
        }
        series = next(r for r in self.intake.requests if r["path"] == "/api/v1/series")
        (point,) = series["body"]["series"]
        assert point["metric"] == "datadog.security_agent.up"
        assert point["type"] == "gauge"
        assert point["host"] == agent.hostname
        assert point["points"][0][1] == 1
        stats = agent.published["sinks"]()["datadog"]
        assert stats["sent"] == 14
        assert stats["dropped"] == 0
        assert stats["queued_records"] == 0

    async def test_503_429_timeouts_resets_and_a_restart_are_retried_until_delivered(self):
        agent, _service = await self.start_agent(self.config())
        self.intake.script = ["503", "timeout", "reset", "lost", "429", "500"]
        first = [agent.events.emit("runtime", {"seq": i}) for i in range(30)]
        await self.wait_for(lambda: not self.intake.script, "the scripted failures")
        await self.relisten()  # the intake goes away and comes back on the same port
        later = [agent.events.emit("runtime", {"seq": i}) for i in range(30, 60)]
        wanted = {e.id for e in [*first, *later]}
        await self.wait_for(lambda: wanted <= set(self.intake.received_ids()), "every event")
        received = self.intake.received_ids()
        assert len(received) - len(set(received)) == 10  # the batch whose answer was lost
        route = agent.published["sinks"]()["datadog"]["destinations"]["runtime"]
        assert route["retried"] >= 6
        assert route["dropped"] == 0
        assert route["queued_records"] == 0
        assert route["sent"] >= 60
        messages = self.messages()
        url = f"http://127.0.0.1:{self.port_number}/api/v2/logs"
        for reason in (
            "503 Service Unavailable",
            "no answer within 0.3s",
            "429 Too Many Requests",
            "500 Internal Server Error",
        ):
            assert any(f"to {url} failed ({reason}); retry " in m for m in messages), reason

    async def test_a_client_error_drops_the_batch_and_says_why(self):
        agent, _service = await self.start_agent(self.config())
        self.intake.script = ["400"]
        dropped = agent.events.emit("runtime", {"seq": 0})
        await self.wait_for(lambda: self.intake.modes_seen == ["400"], "the 400")
        kept = agent.events.emit("runtime", {"seq": 1})
        await self.wait_for(lambda: kept.id in self.intake.received_ids(), "the next event")
        assert dropped.id not in self.intake.received_ids()
        url = f"http://127.0.0.1:{self.port_number}/api/v2/logs"
        assert (
            f"Sink datadog-runtime: {url} refused 1 event(s) with 400 Bad Request: "
            "intake says 400; dropping them (retrying cannot help)" in self.messages()
        )
        stats = agent.published["sinks"]()["datadog"]
        assert stats["dropped"] == 1
        assert stats["last_error"] == "400 Bad Request: intake says 400"

    async def test_stop_flushes_what_is_queued(self):
        agent, service = await self.start_agent(
            self.config().replace("batch_wait: 0.05", "batch_wait: 60")
        )
        events = [agent.events.emit("compliance", {"seq": i}) for i in range(3)]
        await task.deferLater(reactor, 0.1, lambda: None)
        assert self.intake.requests == []  # a partial batch waits for batch_wait
        await service.stopService()
        assert set(self.intake.received_ids()) == {e.id for e in events}

    async def test_events_spooled_while_stopped_are_replayed_by_the_next_start(self):
        self.intake.default = "503"
        config = self.config().replace("flush_timeout: 3s", "flush_timeout: 0.5s")
        path = pathlib.Path(self.mktemp())
        path.mkdir(parents=True)
        agent, service = await self.start_agent(config, path)
        events = [agent.events.emit("runtime", {"seq": i}) for i in range(5)]
        await service.stopService()
        assert self.intake.received_ids() == []
        self.intake.default = "ok"
        await self.start_agent(config, path)
        await self.wait_for(
            lambda: {e.id for e in events} <= set(self.intake.received_ids()), "the replay"
        )
        assert any(
            m.startswith("Sink datadog-runtime: replaying 5 undelivered event(s) (")
            for m in self.messages()
        )


class OtlpSinkTests(IntakeCase):
    async def test_events_reach_the_collector_as_otlp_json_logs(self):
        agent, _service = await self.start_agent(
            "sinks:\n  file:\n    enabled: false\n"
            f"  otlp:\n    endpoint: http://127.0.0.1:{self.port_number}\n"
            "    batch_wait: 0.05s\n    headers:\n      x-tenant: blue\n"
        )
        assert not agent.runtimes["sinks"].spec.requires_api_key
        event = agent.events.emit("runtime", {"rule_id": "r1"})
        await self.wait_for(lambda: self.intake.requests, "the OTLP request")
        (request,) = self.intake.requests
        assert request["path"] == "/v1/logs"
        assert request["headers"]["x-tenant"] == "blue"
        assert request["headers"]["content-encoding"] == "gzip"
        (resource_logs,) = request["body"]["resourceLogs"]
        attributes = {
            a["key"]: a["value"]["stringValue"] for a in resource_logs["resource"]["attributes"]
        }
        assert attributes["service.name"] == "security-agent"
        assert attributes["host.name"] == agent.hostname
        (record,) = resource_logs["scopeLogs"][0]["logRecords"]
        assert json.loads(record["body"]["stringValue"]) == {"rule_id": "r1"}
        assert record["timeUnixNano"] == str(int(event.timestamp * 1000000000))
        assert {a["key"]: a["value"]["stringValue"] for a in record["attributes"]} == {
            "event.id": event.id,
            "event.track": "runtime",
        }
