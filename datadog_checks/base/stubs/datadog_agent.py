"""``DatadogAgentStub``: host information, config, metadata and cache, in memory."""

from __future__ import annotations

import re
from typing import Any


class DatadogAgentStub:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._metadata: dict[tuple[str, str], str] = {}
        self._cache: dict[str, str] = {}
        self._config: dict[str, Any] = {"enable_metadata_collection": True}
        self._hostname = "stubbed.hostname"
        self._external_tags: list[Any] = []
        self._logs: list[tuple[str, int]] = []

    def get_hostname(self) -> str:
        return self._hostname

    def set_hostname(self, hostname: str) -> None:
        self._hostname = hostname

    def get_clustername(self) -> str:
        return ""

    def get_host_tags(self) -> str:
        return "{}"

    def get_version(self) -> str:
        return "0.0.0"

    def get_config(self, key: str) -> Any:
        return self._config.get(key, "")

    def set_config(self, key: str, value: Any) -> None:
        self._config[key] = value

    def tracemalloc_enabled(self) -> bool:
        return False

    def headers(self, agentConfig: Any = None, **kwargs: Any) -> dict[str, str]:
        headers = {
            "User-Agent": "Datadog Agent/0.0.0",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "text/html, */*",
        }
        if "http_host" in kwargs:
            headers["Host"] = kwargs["http_host"]
        return headers

    def log(self, message: str, level: int) -> None:
        self._logs.append((message, level))

    def send_log(self, log_line: str, check_id: str) -> None:
        self._logs.append((log_line, 0))

    def set_check_metadata(self, check_id: str, name: str, value: str) -> None:
        self._metadata[(check_id, name)] = value

    def set_external_tags(self, external_tags: Any) -> None:
        self._external_tags = list(external_tags)

    def write_persistent_cache(self, key: str, value: str) -> None:
        self._cache[key] = value

    def read_persistent_cache(self, key: str) -> str:
        return self._cache.get(key, "")

    def obfuscate_sql(self, query: str, options: Any = None) -> str:
        return re.sub(r"\s+", " ", query or "").strip()

    def emit_agent_telemetry(self, *args: Any, **kwargs: Any) -> None:
        pass

    # --- assertions ---

    def assert_metadata(self, check_id: str, data: dict[str, str]) -> None:
        actual = {name: value for (cid, name), value in self._metadata.items() if cid == check_id}
        wanted = {name: str(value) for name, value in data.items()}
        assert actual == wanted, f"metadata of {check_id!r}: {actual} != {wanted}"

    def assert_metadata_count(self, count: int) -> None:
        assert len(self._metadata) == count, f"{len(self._metadata)} metadata entries"

    def assert_external_tags(self, hostname: str, external_tags: dict[str, list[str]]) -> None:
        for host, by_source in self._external_tags:
            if host == hostname:
                got = {k: sorted(v) for k, v in by_source.items()}
                want = {k: sorted(v) for k, v in external_tags.items()}
                assert got == want, f"external tags of {hostname}: {got} != {want}"
                return
        raise AssertionError(f"no external tags for {hostname!r}: {self._external_tags}")


datadog_agent = DatadogAgentStub()
