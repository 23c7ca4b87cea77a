"""``AggregatorStub``: records raw submissions and offers ``assert_*`` helpers."""

# The positional signatures are upstream's public API: checks call them positionally.
# ruff: noqa: PLR0917

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, ClassVar, NamedTuple


class MetricStub(NamedTuple):
    name: str
    type: int
    value: float
    tags: list[str]
    hostname: str
    device: str | None
    flush_first_value: bool


class ServiceCheckStub(NamedTuple):
    check_id: str
    name: str
    status: int
    tags: list[str]
    hostname: str
    message: str


class HistogramBucketStub(NamedTuple):
    name: str
    value: int
    lower_bound: float
    upper_bound: float
    monotonic: bool
    hostname: str
    tags: list[str]
    flush_first_value: bool


def _only_strings(tags: Any) -> list[str]:
    return sorted(t for t in (tags or []) if isinstance(t, str))


def _device(tags: list[str]) -> str | None:
    for tag in tags:
        if tag.startswith("device:"):
            return tag[len("device:") :]
    return None


class AggregatorStub:
    """What a check submitted, by name, in order."""

    GAUGE, RATE, COUNT, MONOTONIC_COUNT, COUNTER, HISTOGRAM, HISTORATE = range(7)
    METRIC_ENUM_MAP: ClassVar[dict[str, int]] = {
        "gauge": 0,
        "rate": 1,
        "count": 2,
        "monotonic_count": 3,
        "counter": 4,
        "histogram": 5,
        "historate": 6,
    }

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._metrics: dict[str, list[MetricStub]] = defaultdict(list)
        self._asserted: set[str] = set()
        self._service_checks: dict[str, list[ServiceCheckStub]] = defaultdict(list)
        self._events: list[dict[str, Any]] = []
        self._histogram_buckets: dict[str, list[HistogramBucketStub]] = defaultdict(list)

    # --- the builtin module's functions ---

    def submit_metric(
        self,
        check: Any,
        check_id: str,
        mtype: int,
        name: str,
        value: float,
        tags: Any,
        hostname: str,
        flush_first_value: bool = False,
    ) -> None:
        clean = _only_strings(tags)
        self._metrics[name].append(
            MetricStub(name, mtype, value, clean, hostname, _device(clean), flush_first_value)
        )

    def submit_service_check(
        self,
        check: Any,
        check_id: str,
        name: str,
        status: int,
        tags: Any,
        hostname: str,
        message: str,
    ) -> None:
        self._service_checks[name].append(
            ServiceCheckStub(check_id, name, status, _only_strings(tags), hostname, message)
        )

    def submit_event(self, check: Any, check_id: str, event: dict[str, Any]) -> None:
        self._events.append(event)

    def submit_histogram_bucket(
        self,
        check: Any,
        check_id: str,
        name: str,
        value: int,
        lower_bound: float,
        upper_bound: float,
        monotonic: int,
        hostname: str,
        tags: Any,
        flush_first_value: bool = False,
    ) -> None:
        self._histogram_buckets[name].append(
            HistogramBucketStub(
                name,
                value,
                lower_bound,
                upper_bound,
                bool(monotonic),
                hostname,
                _only_strings(tags),
                flush_first_value,
            )
        )

    # --- accessors ---

    def metrics(self, name: str) -> list[MetricStub]:
        return list(self._metrics.get(name, []))

    def service_checks(self, name: str) -> list[ServiceCheckStub]:
        return list(self._service_checks.get(name, []))

    def histogram_bucket(self, name: str) -> list[HistogramBucketStub]:
        return list(self._histogram_buckets.get(name, []))

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self._events)

    @property
    def metric_names(self) -> list[str]:
        return list(self._metrics)

    def not_asserted(self) -> list[str]:
        return [name for name in self._metrics if name not in self._asserted]

    # --- assertions ---

    def assert_metric(
        self,
        name: str,
        value: float | None = None,
        tags: list[str] | None = None,
        count: int | None = None,
        at_least: int = 1,
        hostname: str | None = None,
        metric_type: int | None = None,
        device: str | None = None,
        flush_first_value: bool | None = None,
    ) -> None:
        """Assert ``name`` was submitted matching every given field (tags compared sorted)."""
        wanted_tags = sorted(tags) if tags is not None else None
        candidates = [
            m
            for m in self._metrics.get(name, [])
            if (wanted_tags is None or m.tags == wanted_tags)
            and (hostname is None or m.hostname == hostname)
            and (metric_type is None or m.type == metric_type)
            and (device is None or m.device == device)
            and (flush_first_value is None or m.flush_first_value == flush_first_value)
        ]
        if value is not None:
            if candidates and all(m.type == self.COUNT for m in candidates):
                matched = candidates if sum(m.value for m in candidates) == value else []
            else:
                matched = [m for m in candidates if m.value == value]
        else:
            matched = candidates
        self._asserted.add(name)
        needed = f"exactly {count}" if count is not None else f"at least {at_least}"
        description = (
            f"Needed {needed}"
            f" candidates for '{name}', got {len(matched)}. Submitted: {self.metrics(name)}"
        )
        if count is not None:
            assert len(matched) == count, description
        else:
            assert len(matched) >= at_least, description

    def assert_metric_has_tag(
        self, name: str, tag: str, count: int | None = None, at_least: int = 1
    ) -> None:
        matched = [m for m in self._metrics.get(name, []) if tag in m.tags]
        self._asserted.add(name)
        if count is not None:
            assert len(matched) == count, f"{name}: {len(matched)} with tag {tag!r}"
        else:
            assert len(matched) >= at_least, f"{name}: {len(matched)} with tag {tag!r}"

    def assert_service_check(
        self,
        name: str,
        status: int | None = None,
        tags: list[str] | None = None,
        count: int | None = None,
        at_least: int = 1,
        hostname: str | None = None,
        message: str | None = None,
    ) -> None:
        """``message`` is a regular expression matched against the whole message."""
        wanted_tags = sorted(tags) if tags is not None else None
        matched = [
            sc
            for sc in self._service_checks.get(name, [])
            if (status is None or sc.status == status)
            and (wanted_tags is None or sc.tags == wanted_tags)
            and (hostname is None or sc.hostname == hostname)
            and (message is None or re.fullmatch(message, sc.message) is not None)
        ]
        description = (
            f"service check {name!r}: {len(matched)} match(es) of {self.service_checks(name)}"
        )
        if count is not None:
            assert len(matched) == count, description
        else:
            assert len(matched) >= at_least, description

    def assert_event(
        self,
        msg_text: str,
        count: int | None = None,
        at_least: int = 1,
        exact_match: bool = True,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        matched = []
        for event in self._events:
            text = event.get("msg_text", "")
            if (text != msg_text) if exact_match else (msg_text not in text):
                continue
            if tags is not None and sorted(event.get("tags") or []) != sorted(tags):
                continue
            if any(event.get(k) != v for k, v in kwargs.items()):
                continue
            matched.append(event)
        description = f"event {msg_text!r}: {len(matched)} match(es) of {self._events}"
        if count is not None:
            assert len(matched) == count, description
        else:
            assert len(matched) >= at_least, description

    def assert_all_metrics_covered(self) -> None:
        missing = self.not_asserted()
        assert not missing, f"Some metrics are missing: {missing}"


aggregator = AggregatorStub()
