"""Every configuration key the sinks read, and their reading into plain settings objects.

Datadog's keys keep Datadog's names and meaning: ``site``, ``api_key``, ``dd_url`` and, per
product, the logs endpoint keys under ``compliance_config.endpoints.`` and
``runtime_security_config.endpoints.``. Keys of our own live under ``sinks.``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SITE = "datadoghq.com"
LOGS_PATH = "/api/v2/logs"
SERIES_PATH = "/api/v1/series"


@dataclass(frozen=True)
class Product:
    """How one product's events reach the logs intake (Datadog's ``NewLogContext*``)."""

    track: str
    keys_prefix: str
    intake_prefix: str
    origin: str
    source: str


PRODUCTS = (
    Product(
        track="compliance",
        keys_prefix="compliance_config.endpoints.",
        intake_prefix="cspm-intake.",
        origin="agent",
        source="compliance-agent",
    ),
    Product(
        track="runtime",
        keys_prefix="runtime_security_config.endpoints.",
        intake_prefix="runtime-security-http-intake.logs.",
        origin="cloud-workload-security",
        source="runtime-security-agent",
    ),
)

# Datadog's logs endpoint keys and defaults (pkg/config/setup: bindEnvAndSetLogsConfigKeys).
LOGS_KEYS: dict[str, Any] = {
    "logs_dd_url": "",
    "logs_no_ssl": False,
    "use_http": True,
    "use_compression": True,
    "compression_level": 6,
    "batch_wait": 5,
    "batch_max_size": 1000,
    "batch_max_content_size": 5_000_000,
}

SINK_KEYS: dict[str, tuple[Any, str]] = {
    "sinks.file.enabled": (True, "write events as JSON lines, one file per track"),
    "sinks.file.dir": ("", "where the event files go; empty means <run_path>/events"),
    "sinks.file.max_size": ("10MB", "an event file is rotated past this size"),
    "sinks.file.max_rolls": (3, "rotated event files kept per track"),
    "sinks.file.tracks": (["compliance", "runtime", "metrics"], "tracks the file sink takes"),
    "sinks.datadog.enabled": (True, "send to Datadog when api_key or an endpoint is set"),
    "sinks.datadog.metrics_batch_wait": ("5s", "longest wait before partial series are sent"),
    "sinks.otlp.endpoint": ("", "OTLP/HTTP collector base URL, e.g. http://127.0.0.1:4318"),
    "sinks.otlp.headers": ({}, "extra HTTP headers for the collector (authentication)"),
    "sinks.otlp.tracks": (["compliance", "runtime"], "tracks sent to the collector as logs"),
    "sinks.otlp.use_compression": (True, "gzip the OTLP request bodies"),
    "sinks.otlp.batch_wait": ("1s", "longest wait before a partial batch is sent"),
    "sinks.otlp.batch_max_size": (1000, "log records per OTLP request"),
    "sinks.otlp.batch_max_content_size": ("4MB", "bytes of events per OTLP request"),
    "sinks.spool.max_size": ("64MB", "bytes of undelivered events kept per destination"),
    "sinks.spool.fsync_interval": ("1s", "how often the spool is fsynced; 0 fsyncs every event"),
    "sinks.retry.initial_backoff": ("1s", "first delay after a failed send"),
    "sinks.retry.max_backoff": ("2m", "longest delay between two attempts"),
    "sinks.request_timeout": ("10s", "an HTTP request taking longer is retried"),
    "sinks.flush_timeout": ("5s", "at stop, how long queued events may take to leave"),
}


def declare_keys(schema: Any) -> None:
    """The ``security_agent_config_schema`` body: every key the sinks read."""
    schema.declare("site", DEFAULT_SITE, description="the Datadog site events are sent to")
    schema.declare(
        "dd_url", "", env=("DD_URL",), description="metrics intake; empty means api.<site>"
    )
    for product in PRODUCTS:
        for name, default in LOGS_KEYS.items():
            schema.declare(product.keys_prefix + name, default)
    for key, (default, description) in SINK_KEYS.items():
        schema.declare(key, default, description=description, path=key == "sinks.file.dir")


@dataclass(frozen=True)
class BatchSettings:
    wait: float
    max_size: int
    max_content_size: int


@dataclass(frozen=True)
class LogsEndpoint:
    """Where one product's events go and how they are batched."""

    product: Product
    url: str
    use_compression: bool
    compression_level: int
    batch: BatchSettings


@dataclass(frozen=True)
class RetrySettings:
    initial_backoff: float
    max_backoff: float
    request_timeout: float


def _positive(config: Any, key: str, value: float) -> float:
    if value <= 0:
        raise config.value_error(key, f"must be positive, got {value:g}")
    return value


def positive_duration(config: Any, key: str) -> float:
    return _positive(config, key, config.get_duration(key))


def batch_settings(config: Any, prefix: str) -> BatchSettings:
    """``<prefix>batch_wait``, ``batch_max_size`` and ``batch_max_content_size``, all positive
    (Datadog's logs endpoint keys, which the OTLP sink borrows)."""
    return BatchSettings(
        wait=positive_duration(config, prefix + "batch_wait"),
        max_size=int(
            _positive(config, prefix + "batch_max_size", config.get_int(prefix + "batch_max_size"))
        ),
        max_content_size=int(
            _positive(
                config,
                prefix + "batch_max_content_size",
                config.get_size(prefix + "batch_max_content_size"),
            )
        ),
    )


def parse_host_port(config: Any, key: str) -> tuple[str, int]:
    """``logs_dd_url`` is ``host:port`` (Datadog's format); IPv6 hosts in brackets."""
    value = config.get_str(key).strip()
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or "/" in value:
        raise config.value_error(key, f"expected host:port, got {value!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise config.value_error(key, f"port must be between 1 and 65535, got {port}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise config.value_error(key, f"invalid IPv6 address {host!r}") from None
    return host, port


def _url(scheme: str, host: str, port: int, path: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    return f"{scheme}://{shown}{'' if default else f':{port}'}{path}"


def endpoint_configured(config: Any) -> bool:
    """Whether a product endpoint is configured (then ``api_key`` is required)."""
    return any(config.is_set(p.keys_prefix + "logs_dd_url") for p in PRODUCTS)


def datadog_enabled(config: Any) -> bool:
    if not config.get_bool("sinks.datadog.enabled"):
        return False
    return bool(config.get_str("api_key")) or endpoint_configured(config)


def logs_endpoint(config: Any, product: Product) -> LogsEndpoint:
    p = product.keys_prefix
    site = config.get_str("site") or DEFAULT_SITE
    if config.is_set(p + "logs_dd_url"):
        host, port = parse_host_port(config, p + "logs_dd_url")
    else:
        host, port = product.intake_prefix + site, 443
    scheme = "http" if config.get_bool(p + "logs_no_ssl") else "https"
    level = config.get_int(p + "compression_level")
    if not 0 <= level <= 9:
        raise config.value_error(p + "compression_level", f"must be 0 to 9, got {level}")
    return LogsEndpoint(
        product=product,
        url=_url(scheme, host, port, LOGS_PATH),
        use_compression=config.get_bool(p + "use_compression"),
        compression_level=level,
        batch=batch_settings(config, p),
    )


def series_url(config: Any) -> str:
    dd_url: str = config.get_str("dd_url").strip().rstrip("/")
    if not dd_url:
        return f"https://api.{config.get_str('site') or DEFAULT_SITE}{SERIES_PATH}"
    parts = urlsplit(dd_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise config.value_error("dd_url", f"expected an http(s) URL, got {dd_url!r}")
    return dd_url + SERIES_PATH


def otlp_url(config: Any) -> str:
    endpoint: str = config.get_str("sinks.otlp.endpoint").strip().rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise config.value_error(
            "sinks.otlp.endpoint", f"expected an http(s) URL, got {endpoint!r}"
        )
    return endpoint if endpoint.endswith("/v1/logs") else endpoint + "/v1/logs"


def otlp_batch(config: Any) -> BatchSettings:
    return batch_settings(config, "sinks.otlp.")


def otlp_headers(config: Any) -> dict[str, str]:
    raw = config.get("sinks.otlp.headers") or {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise config.value_error("sinks.otlp.headers", "expected a mapping of header names")
    return {k: str(v) for k, v in raw.items()}


def retry_settings(config: Any) -> RetrySettings:
    initial = positive_duration(config, "sinks.retry.initial_backoff")
    maximum = config.get_duration("sinks.retry.max_backoff")
    if maximum < initial:
        raise config.value_error(
            "sinks.retry.max_backoff",
            f"must be at least sinks.retry.initial_backoff ({initial:g}s), got {maximum:g}s",
        )
    timeout = positive_duration(config, "sinks.request_timeout")
    return RetrySettings(initial, maximum, timeout)


def tracks(config: Any, key: str) -> frozenset[str]:
    names = config.get_list(key)
    for name in names:
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise config.value_error(key, f"invalid track name {name!r}")
    return frozenset(str(n) for n in names)
