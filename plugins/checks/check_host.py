"""What the builtin modules call back into: the agent side of rtloader's callbacks.

One :class:`CheckHost` per agent holds the aggregator, the persistent cache, check metadata
and external tags. The builtin modules (:mod:`plugins.checks.builtin_modules`) validate their
arguments like rtloader and then call these methods; they may be called from any runner
thread, so every store here is guarded.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from host.logs import twisted_level
from plugins.checks.aggregation import Aggregator
from plugins.checks.persistent_cache import PersistentCache

if TYPE_CHECKING:
    from host.agent import Agent

log = Logger(namespace="checks")


_SQL_LITERALS = re.compile(r"'(?:[^'\\]|\\.|'')*'|\b\d+(?:\.\d+)?\b")


class CheckHost:
    """The agent as checks see it."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.aggregator = Aggregator(agent.reactor.seconds)
        self.cache = PersistentCache(os.path.join(agent.run_path, "checks_cache"))
        self._lock = threading.Lock()
        self.metadata: dict[str, dict[str, str]] = {}
        self.external_tags: dict[str, dict[str, list[str]]] = {}
        self.telemetry: Counter[str] = Counter()
        self.logs_sent = 0
        self.issues: dict[str, str] = {}

    # --- datadog_agent ---

    def get_config(self, key: str) -> Any:
        value = self.agent.config.get(key)
        try:
            # rtloader's callback hands over JSON: the check gets plain JSON types.
            return json.loads(json.dumps(value, default=str))
        except (TypeError, ValueError):
            return None

    def get_hostname(self) -> str:
        return self.agent.hostname

    def get_clustername(self) -> str:
        return str(self.agent.config.get("cluster_name") or "")

    def get_host_tags(self) -> str:
        tags = self.agent.config.get("tags") or []
        return json.dumps({"system": [str(t) for t in tags]})

    def get_version(self) -> str:
        return self.agent.version

    def tracemalloc_enabled(self) -> bool:
        return bool(self.agent.config.get("tracemalloc_debug"))

    def process_start_time(self) -> float:
        return float(self.agent.started_at)

    def headers(self, http_host: str | None) -> dict[str, str]:
        result = {
            "User-Agent": f"Datadog Agent/{self.agent.version}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "text/html, */*",
        }
        if http_host is not None:
            result["Host"] = http_host
        return result

    def log(self, message: str, level: int) -> None:
        log.emit(twisted_level(level), "{message}", message=message)

    def send_log(self, log_line: str, check_id: str) -> None:
        with self._lock:
            self.logs_sent += 1
        log.debug("{check_id}: log line from check: {line}", check_id=check_id, line=log_line)

    def set_check_metadata(self, check_id: str, name: str, value: str) -> None:
        with self._lock:
            self.metadata.setdefault(check_id, {})[name] = value

    def check_metadata(self, check_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self.metadata.get(check_id, {}))

    def set_external_tags(self, entries: list[tuple[str, dict[str, list[str]]]]) -> None:
        with self._lock:
            for hostname, by_source in entries:
                self.external_tags.setdefault(hostname, {}).update(by_source)

    def write_persistent_cache(self, key: str, value: str) -> None:
        self.cache.write(key, value)

    def read_persistent_cache(self, key: str) -> str:
        return self.cache.read(key)

    def obfuscate_sql(self, query: str) -> str:
        return " ".join(_SQL_LITERALS.sub("?", query).split())

    def emit_agent_telemetry(
        self, check_name: str, metric_name: str, value: float, metric_type: str, labels: str | None
    ) -> None:
        with self._lock:
            self.telemetry[f"{check_name}.{metric_name}"] += 1

    def report_issue(self, check_name: str, report: str | None) -> None:
        with self._lock:
            self.issues[check_name] = report or ""

    def resolve_issue(self, issue_id: str) -> None:
        with self._lock:
            self.issues.pop(issue_id, None)

    # --- containers / kubeutil / tagger: this host runs outside an orchestrator ---

    def container_excluded(self, name: str, image: str, namespace: str) -> bool:
        """``container_exclude`` patterns (``name:<re>``, ``image:<re>``, ``kube_namespace:<re>``)
        unless a ``container_include`` pattern matches, as the Datadog Agent filters."""

        def matches(patterns: Any) -> bool:
            for pattern in patterns or []:
                kind, _, regex = str(pattern).partition(":")
                subject = {"name": name, "image": image, "kube_namespace": namespace}.get(kind)
                if subject is not None and re.search(regex, subject):
                    return True
            return False

        config = self.agent.config
        if matches(config.get("container_include")):
            return False
        return matches(config.get("container_exclude"))

    def tags_for(self, entity_id: str, cardinality: int) -> list[str]:
        return []
