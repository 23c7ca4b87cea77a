"""``AgentCheck``: the base class of every check, with upstream's public API.

A check subclasses it, implements ``check(self, instance)`` and submits what it measures with
``gauge``/``count``/``rate``/``service_check``/``event``… The host calls ``run()``, which
returns ``""`` on success or the JSON list ``[{"message", "traceback"}]`` on failure, then
``get_warnings()``. Everything submitted goes through the builtin modules (see
:mod:`datadog_checks.base.agent`), so the same check runs under this project's host, under
the Datadog Agent, and in a plain test process against the stubs.
"""

# The positional signatures are upstream's public API: checks call them positionally.
# ruff: noqa: PLR0917

from __future__ import annotations

import copy
import json
import logging
import re
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from datadog_checks.base.agent import agent_running, builtin
from datadog_checks.base.config import is_affirmative
from datadog_checks.base.log import CheckLoggingAdapter, init_logging
from datadog_checks.base.types import ServiceCheck
from datadog_checks.base.utils.common import ensure_unicode, to_native_string

GAUGE, RATE, COUNT, MONOTONIC_COUNT, COUNTER, HISTOGRAM, HISTORATE = range(7)

_VERSION_RE = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<release>[0-9A-Za-z.-]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)


class AgentCheck:
    """Subclass it and implement :meth:`check`.

    The constructor accepts upstream's three forms: ``C(name, init_config, instances)``,
    the legacy ``C(name, init_config, agentConfig, instances)``, and keywords
    ``C(name=..., init_config=..., instances=...)`` (what the host uses). Only the first
    instance is used: the host builds one check object per configured instance.
    """

    __NAMESPACE__: ClassVar[str] = ""
    """Prefix (``<namespace>.``) of metric and service-check names, unless ``raw=True``."""

    OK, WARNING, CRITICAL, UNKNOWN = ServiceCheck

    FIRST_CAP_RE = re.compile(rb"(.)([A-Z][a-z]+)")
    ALL_CAP_RE = re.compile(rb"([a-z0-9])([A-Z])")
    METRIC_REPLACEMENT = re.compile(rb"([^a-zA-Z0-9_.]+)|(^[^a-zA-Z]+)")
    TAG_REPLACEMENT = re.compile(rb"[,\+\*\-/()\[\]{}\s]")
    MULTIPLE_UNDERSCORE_CLEANUP = re.compile(rb"__+")
    DOT_UNDERSCORE_CLEANUP = re.compile(rb"_*\._*")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._check_id = ""
        self.name: str = kwargs.get("name", "")
        self.init_config: Any = kwargs.get("init_config", {})
        self.agentConfig: Any = kwargs.get("agentConfig", {})
        instances: Any = kwargs.get("instances", [])
        if len(args) > 0:
            self.name = args[0]
        if len(args) > 1:
            self.init_config = args[1]
        if len(args) > 2:
            # The legacy form puts agentConfig third; tell it apart from instances as upstream.
            if len(args) > 3 or not isinstance(args[2], (list, tuple)) or "instances" in kwargs:
                self.agentConfig = args[2]
                if len(args) > 3:
                    instances = args[3]
            else:
                instances = args[2]
        self.instances: list[Any] = list(instances) if instances is not None else []
        self.instance: Any = self.instances[0] if self.instances else None
        self.warnings: list[str] = []
        self.hostname: str = ""
        self.log = CheckLoggingAdapter(logging.getLogger(f"{__name__}.{self.name}"), self)
        self.check_initializations: deque[Callable[[], None]] = deque()
        init_logging()

    # --- identity ---

    @property
    def check_id(self) -> str:
        """``<name>:<hash>``, set by the host after construction (empty in tests)."""
        return self._check_id

    @check_id.setter
    def check_id(self, value: str) -> None:
        self._check_id = value

    def persistent_cache_id(self) -> str:
        return self.check_id.split(":")[-1]

    # --- the run protocol the host uses ---

    def check(self, instance: Any) -> None:
        raise NotImplementedError

    def run(self) -> str:
        """Run the check once: ``""`` on success, else ``[{"message", "traceback"}]`` as JSON."""
        try:
            while self.check_initializations:
                initialization = self.check_initializations.popleft()
                try:
                    initialization()
                except Exception:
                    self.check_initializations.appendleft(initialization)
                    raise
            instance = copy.deepcopy(self.instances[0]) if self.instances else None
            self.check(instance)
            return ""
        except Exception as error:
            result = [{"message": str(error), "traceback": traceback.format_exc()}]
            return json.dumps(result, separators=(",", ":"))

    def cancel(self) -> None:
        """Called once when the host unschedules the check: release what it holds."""

    def get_warnings(self) -> list[str]:
        """The warnings of the last run; the list is cleared."""
        warnings, self.warnings = self.warnings, []
        return warnings

    def get_diagnoses(self) -> str:
        return "[]"

    def warning(self, warning_message: Any, *args: Any, **kwargs: Any) -> None:
        """Log a warning and keep it for the status page (``%``-formatted with ``args``)."""
        text = to_native_string(warning_message)
        if args:
            text = text % args
        kwargs.setdefault("stacklevel", 2)  # name the caller, not this method
        self.log.warning(text, **kwargs)
        self.warnings.append(text)

    # --- metrics ---

    def _format_namespace(self, name: str, raw: bool = False) -> str:
        name = ensure_unicode(name)
        if raw or not self.__NAMESPACE__:
            return name
        return f"{self.__NAMESPACE__}.{name}"

    def _normalize_tags(
        self, tags: Sequence[Any] | None, device_name: str | None = None
    ) -> list[Any]:
        normalized: list[Any] = []
        if device_name:
            normalized.append(f"device:{ensure_unicode(device_name)}")
        for tag in tags or ():
            if tag is None:
                continue
            try:
                normalized.append(to_native_string(tag))
            except UnicodeError:
                self.log.warning("Encoding error with tag %r, skipping it", tag)
        return normalized

    def _submit_metric(
        self,
        mtype: int,
        name: str,
        value: Any,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
        flush_first_value: bool = False,
    ) -> None:
        if value is None:
            return
        metric = self._format_namespace(name, raw)
        try:
            number = float(value)
        except (TypeError, ValueError):
            message = (
                f"Metric: {metric!r} has non float value: {value!r}. "
                "Only float values can be submitted as metrics."
            )
            if not agent_running():
                raise ValueError(message) from None
            self.warning(message)
            return
        builtin("aggregator").submit_metric(
            self,
            self.check_id,
            mtype,
            metric,
            number,
            self._normalize_tags(tags, device_name),
            hostname if hostname is not None else "",
            flush_first_value,
        )

    def gauge(
        self,
        name: str,
        value: Any,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
    ) -> None:
        """The last value in a flush interval wins."""
        self._submit_metric(GAUGE, name, value, tags, hostname, device_name, raw)

    def count(
        self,
        name: str,
        value: Any,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
    ) -> None:
        """Values in a flush interval are summed."""
        self._submit_metric(COUNT, name, value, tags, hostname, device_name, raw)

    def monotonic_count(
        self,
        name: str,
        value: Any,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
        flush_first_value: bool = False,
    ) -> None:
        """A counter that only grows: the host sends the difference between samples."""
        self._submit_metric(
            MONOTONIC_COUNT, name, value, tags, hostname, device_name, raw, flush_first_value
        )

    def rate(
        self,
        name: str,
        value: Any,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
    ) -> None:
        """The host sends the per-second change between two samples."""
        self._submit_metric(RATE, name, value, tags, hostname, device_name, raw)

    def histogram(
        self,
        name: str,
        value: Any,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
    ) -> None:
        """The host sends ``.max``, ``.median``, ``.avg``, ``.count``, ``.95percentile``."""
        self._submit_metric(HISTOGRAM, name, value, tags, hostname, device_name, raw)

    def historate(
        self,
        name: str,
        value: Any,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
    ) -> None:
        """A histogram of the rates between consecutive samples."""
        self._submit_metric(HISTORATE, name, value, tags, hostname, device_name, raw)

    def increment(
        self,
        name: str,
        value: Any = 1,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
    ) -> None:
        """Deprecated upstream; kept for old checks."""
        self._submit_metric(COUNTER, name, value, tags, hostname, device_name, raw)

    def decrement(
        self,
        name: str,
        value: Any = -1,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        device_name: str | None = None,
        raw: bool = False,
    ) -> None:
        """Deprecated upstream; kept for old checks."""
        self._submit_metric(COUNTER, name, value, tags, hostname, device_name, raw)

    def submit_histogram_bucket(
        self,
        name: str,
        value: int,
        lower_bound: float,
        upper_bound: float,
        monotonic: bool,
        hostname: str | None,
        tags: Sequence[Any] | None,
        raw: bool = False,
        flush_first_value: bool = False,
    ) -> None:
        if value is None:
            return
        builtin("aggregator").submit_histogram_bucket(
            self,
            self.check_id,
            self._format_namespace(name, raw),
            int(value),
            float(lower_bound),
            float(upper_bound),
            int(monotonic),
            hostname if hostname is not None else "",
            self._normalize_tags(tags),
            flush_first_value,
        )

    # --- service checks and events ---

    def service_check(
        self,
        name: str,
        status: int,
        tags: Sequence[Any] | None = None,
        hostname: str | None = None,
        message: str | None = None,
        raw: bool = False,
    ) -> None:
        """Report OK (0), WARNING (1), CRITICAL (2) or UNKNOWN (3) for ``name``."""
        text = "" if message is None else to_native_string(message)
        builtin("aggregator").submit_service_check(
            self,
            self.check_id,
            self._format_namespace(name, raw),
            status,
            self._normalize_tags(tags),
            hostname if hostname is not None else "",
            text,
        )

    def event(self, event: dict[str, Any]) -> None:
        """Submit an event (keys of :class:`datadog_checks.base.types.Event`)."""
        payload = dict(event)
        for key in ("msg_title", "msg_text", "aggregation_key", "source_type_name", "host"):
            if key in payload:
                payload[key] = ensure_unicode(payload[key])
        if "tags" in payload:
            payload["tags"] = self._normalize_tags(payload["tags"])
        if isinstance(payload.get("timestamp"), float):
            payload["timestamp"] = int(payload["timestamp"])
        if self.__NAMESPACE__:
            payload.setdefault("source_type_name", self.__NAMESPACE__)
        builtin("aggregator").submit_event(self, self.check_id, payload)

    # --- metadata, external tags, cache ---

    def is_metadata_collection_enabled(self) -> bool:
        return is_affirmative(builtin("datadog_agent").get_config("enable_metadata_collection"))

    def set_metadata(self, name: str, value: Any, **options: Any) -> None:
        """Record check metadata; ``version`` is split into major/minor/patch/raw/scheme."""
        if not self.check_id and agent_running():
            return
        agent = builtin("datadog_agent")
        if name == "version":
            for key, part in self._version_parts(str(value), options).items():
                agent.set_check_metadata(self.check_id, f"version.{key}", part)
            return
        agent.set_check_metadata(self.check_id, name, to_native_string(str(value)))

    def _version_parts(self, version: str, options: dict[str, Any]) -> dict[str, str]:
        scheme = options.get("scheme", "semver")
        parts: dict[str, str] = {}
        if scheme == "semver":
            match = _VERSION_RE.match(version)
            if match is None:
                self.log.debug("Unable to parse semver %r", version)
                return {"raw": version}
            for key in ("major", "minor", "patch", "release", "build"):
                if match.group(key) is not None:
                    parts[key] = match.group(key)
        parts["raw"] = version
        parts["scheme"] = scheme
        return parts

    def set_external_tags(self, external_tags: Iterable[Any]) -> None:
        """Attach tags to other hosts: ``[(hostname, {source_type: [tags]}), ...]``."""
        normalized = []
        for entry in external_tags:
            if isinstance(entry, tuple) and len(entry) >= 2 and isinstance(entry[1], dict):
                hostname, by_source = entry[0], entry[1]
                tags_by_source = {
                    src: self._normalize_tags(tags) if isinstance(tags, list) else tags
                    for src, tags in by_source.items()
                }
                normalized.append((hostname, tags_by_source))
                continue
            normalized.append(entry)
        builtin("datadog_agent").set_external_tags(normalized)

    def _cache_key(self, key: str) -> str:
        return f"{self.name}:{self.persistent_cache_id()}_{key}"

    def read_persistent_cache(self, key: str) -> str:
        """What :meth:`write_persistent_cache` stored under ``key``; ``""`` when nothing."""
        return str(builtin("datadog_agent").read_persistent_cache(self._cache_key(key)))

    def write_persistent_cache(self, key: str, value: str) -> None:
        """Store a string that survives agent restarts."""
        builtin("datadog_agent").write_persistent_cache(self._cache_key(key), value)

    # --- naming helpers ---

    def normalize(
        self, metric: str | bytes, prefix: str | None = None, fix_case: bool = False
    ) -> str:
        """Make ``metric`` a valid metric name (``a-b`` -> ``a_b``)."""
        name = metric.encode("utf-8", "ignore") if isinstance(metric, str) else metric
        if fix_case:
            name = self.FIRST_CAP_RE.sub(rb"\1_\2", name)
            name = self.ALL_CAP_RE.sub(rb"\1_\2", name).lower()
        name = self.METRIC_REPLACEMENT.sub(b"_", name)
        name = self.DOT_UNDERSCORE_CLEANUP.sub(b".", name).strip(b"_")
        text = name.decode("utf-8")
        return f"{prefix}.{text}" if prefix else text

    def normalize_tag(self, tag: str | bytes) -> str:
        raw = tag.encode("utf-8", "ignore") if isinstance(tag, str) else tag
        raw = self.TAG_REPLACEMENT.sub(b"_", raw)
        raw = self.MULTIPLE_UNDERSCORE_CLEANUP.sub(b"_", raw)
        raw = self.DOT_UNDERSCORE_CLEANUP.sub(b".", raw).strip(b"_")
        return raw.decode("utf-8")

    @staticmethod
    def load_config(yaml_str: str) -> Any:
        """Parse a YAML document the way the host does (safe loader)."""
        import yaml

        return yaml.safe_load(yaml_str)
