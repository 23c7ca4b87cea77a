"""Turn the configuration into sinks: which ones, where they send, where they spool."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from twisted.logger import Logger

from plugins.sinks import settings
from plugins.sinks.backoff import Backoff
from plugins.sinks.datadog import LogsEncoder, SeriesEncoder, series_problem
from plugins.sinks.delivery import DeliveryLoop, Encoder
from plugins.sinks.file_sink import FileSink
from plugins.sinks.network_sink import NetworkSink
from plugins.sinks.otlp import OtlpEncoder
from plugins.sinks.settings import BatchSettings, RetrySettings
from plugins.sinks.spool import Spool
from plugins.sinks.transport import Transport, TreqTransport

log = Logger(namespace="sinks")

SERIES_MAX_CONTENT = 2_000_000
"""The series API takes up to 3.2 MB compressed; 2 MB of raw JSON stays well inside."""


@dataclass(frozen=True)
class Plan:
    """What the configuration asks for; building it validates every key the sinks read."""

    file: bool
    file_dir: Path
    file_tracks: frozenset[str]
    file_max_size: int
    file_max_rolls: int
    datadog: bool
    endpoints: tuple[settings.LogsEndpoint, ...]
    series_url: str
    series_batch: BatchSettings
    otlp_url: str
    otlp_tracks: frozenset[str]
    otlp_batch: BatchSettings
    otlp_headers: dict[str, str]
    otlp_compression: bool
    spool_dir: Path
    spool_max_bytes: int
    fsync_interval: float
    retry: RetrySettings
    flush_timeout: float

    @property
    def any_sink(self) -> bool:
        return self.file or self.datadog or bool(self.otlp_url)


def make_plan(config: Any, run_path: str) -> Plan:
    run = Path(run_path)
    datadog = settings.datadog_enabled(config)
    otlp = bool(config.get_str("sinks.otlp.endpoint").strip())
    max_size = config.get_size("sinks.file.max_size")
    if max_size <= 0:
        raise config.value_error("sinks.file.max_size", f"must be positive, got {max_size}")
    spool_max = config.get_size("sinks.spool.max_size")
    if spool_max < 64 * 1024:
        raise config.value_error(
            "sinks.spool.max_size", f"must be at least 64KB, got {spool_max} bytes"
        )
    fsync = config.get_duration("sinks.spool.fsync_interval")
    if fsync < 0:
        raise config.value_error("sinks.spool.fsync_interval", f"must not be negative: {fsync:g}")
    flush = config.get_duration("sinks.flush_timeout")
    if flush <= 0:
        raise config.value_error("sinks.flush_timeout", f"must be positive, got {flush:g}s")
    return Plan(
        file=config.get_bool("sinks.file.enabled"),
        file_dir=Path(config.get_str("sinks.file.dir") or run / "events"),
        file_tracks=settings.tracks(config, "sinks.file.tracks"),
        file_max_size=max_size,
        file_max_rolls=max(0, config.get_int("sinks.file.max_rolls")),
        datadog=datadog,
        endpoints=tuple(settings.logs_endpoint(config, p) for p in settings.PRODUCTS)
        if datadog
        else (),
        series_url=settings.series_url(config) if datadog else "",
        series_batch=BatchSettings(
            wait=settings.positive_duration(config, "sinks.datadog.metrics_batch_wait"),
            max_size=1000,
            max_content_size=SERIES_MAX_CONTENT,
        ),
        otlp_url=settings.otlp_url(config) if otlp else "",
        otlp_tracks=settings.tracks(config, "sinks.otlp.tracks"),
        otlp_batch=settings.otlp_batch(config),
        otlp_headers=settings.otlp_headers(config),
        otlp_compression=config.get_bool("sinks.otlp.use_compression"),
        spool_dir=run / "spool",
        spool_max_bytes=spool_max,
        fsync_interval=fsync,
        retry=settings.retry_settings(config),
        flush_timeout=flush,
    )


def warn_insecure(plan: Plan, config: Any) -> None:
    """Say so when events would cross the network in clear text."""
    for product in settings.PRODUCTS:
        key = product.keys_prefix + "use_http"
        if plan.datadog and not config.get_bool(key):
            log.warn("{key} is false, but the security agent only sends over HTTP", key=key)
    urls = [e.url for e in plan.endpoints] + ([plan.otlp_url] if plan.otlp_url else [])
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "http" and not _loopback(parts.hostname or ""):
            log.warn("Events to {url} are sent without TLS", url=url)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Destination = tuple[str, str, Encoder, BatchSettings]
"""``(track, url, encoder, batch settings)``: what one delivery loop of a sink sends where."""


def _routes(
    sink: str,
    destinations: list[Destination],
    *,
    plan: Plan,
    transport: Transport,
    reactor: Any,
) -> dict[str, DeliveryLoop]:
    """One delivery loop per track, each with its own spool under ``<spool_dir>/<sink>-<track>``."""
    routes = {}
    for track, url, encode, batch in destinations:
        name = f"{sink}-{track}"
        spool = Spool(
            plan.spool_dir / name,
            max_bytes=plan.spool_max_bytes,
            fsync_interval=plan.fsync_interval,
        )
        routes[track] = DeliveryLoop(
            name,
            url,
            spool,
            encode=encode,
            transport=transport,
            reactor=reactor,
            batch=batch,
            backoff=Backoff(plan.retry.initial_backoff, plan.retry.max_backoff),
            request_timeout=plan.retry.request_timeout,
            fsync_interval=plan.fsync_interval,
        )
    return routes


def build_datadog(plan: Plan, agent: Any, transport: Transport | None = None) -> NetworkSink:
    transport = transport or TreqTransport(agent.reactor, plan.retry.request_timeout)
    api_key = agent.config.get_str("api_key")
    destinations: list[Destination] = [
        (
            endpoint.product.track,
            endpoint.url,
            LogsEncoder(endpoint, api_key, agent.hostname, agent.version),
            endpoint.batch,
        )
        for endpoint in plan.endpoints
    ]
    series = SeriesEncoder(plan.series_url, api_key, agent.hostname, agent.version)
    destinations.append(("metrics", plan.series_url, series, plan.series_batch))
    routes = _routes("datadog", destinations, plan=plan, transport=transport, reactor=agent.reactor)
    return NetworkSink("datadog", routes, transport, {"metrics": series_problem})


def build_otlp(plan: Plan, agent: Any, transport: Transport | None = None) -> NetworkSink:
    transport = transport or TreqTransport(agent.reactor, plan.retry.request_timeout)
    encoder = OtlpEncoder(
        plan.otlp_url, plan.otlp_headers, agent.hostname, agent.version, plan.otlp_compression
    )
    destinations: list[Destination] = [
        (track, plan.otlp_url, encoder, plan.otlp_batch) for track in sorted(plan.otlp_tracks)
    ]
    routes = _routes("otlp", destinations, plan=plan, transport=transport, reactor=agent.reactor)
    return NetworkSink("otlp", routes, transport)


def build_file(plan: Plan) -> FileSink:
    return FileSink(plan.file_dir, plan.file_tracks, plan.file_max_size, plan.file_max_rolls)
