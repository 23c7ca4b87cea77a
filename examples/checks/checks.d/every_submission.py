"""A check that uses every kind of submission the SDK offers, to see how each is aggregated:

security-agent check every_submission --check-rate
"""

import os
import time

from datadog_checks.base import AgentCheck, ConfigurationError, is_affirmative

__version__ = "0.2.0"


class EverySubmissionCheck(AgentCheck):
    # Metric and service-check names get this prefix: `demo.load`, `demo.can_read`…
    __NAMESPACE__ = "demo"

    def __init__(self, name, init_config, instances):
        super().__init__(name, init_config, instances)
        self.path = self.instance.get("path", "/proc/loadavg")
        if not isinstance(self.path, str):
            raise ConfigurationError("path must be a string")
        self.tags = ["path:" + self.path, *list(self.instance.get("tags", []))]
        self.runs = 0

    def check(self, instance):
        self.runs += 1
        try:
            with open(self.path) as handle:
                load1 = float(handle.read().split()[0])
        except OSError as error:
            self.service_check("can_read", self.CRITICAL, tags=self.tags, message=str(error))
            raise
        self.service_check("can_read", self.OK, tags=self.tags)

        self.gauge("load.1", load1, tags=self.tags)  # last value wins
        self.count("runs.count", 1, tags=self.tags)  # summed per run
        self.monotonic_count("runs.total", self.runs, tags=self.tags)  # deltas between runs
        self.rate("cpu.time", sum(os.times()[:2]), tags=self.tags)  # per second, needs 2 runs
        for sample in (load1, load1 * 2, load1 * 3):
            self.histogram("load.spread", sample, tags=self.tags)  # .max .median .avg …
        self.historate("runs.historate", self.runs, tags=self.tags)
        self.increment("legacy.counter", tags=self.tags)  # deprecated upstream, still works

        if is_affirmative(instance.get("send_event", True)) and self.runs == 1:
            self.event(
                {
                    "timestamp": int(time.time()),
                    "event_type": "demo",
                    "msg_title": "every_submission started",
                    "msg_text": f"watching {self.path}",
                    "alert_type": "info",
                    "tags": self.tags,
                }
            )
        if load1 > float(instance.get("load_warning", 50)):
            self.warning("load %.2f is above %s", load1, instance.get("load_warning", 50))

        self.set_metadata("version", __version__)
        self.write_persistent_cache("last_load", str(load1))
        peer = self.instance.get("peer_host", "peer.example")
        self.set_external_tags([(peer, {"demo": ["role:peer"]})])
