"""``security_agent.internal_profiling.*``: the keys, and the settings the Go agent derives.

The URL follows ``setupInternalProfiling``: with ``TRACE_AGENT_URL`` in the environment the
profiles go to the local trace agent (``http://<TRACE_AGENT_URL>/profiling/v1/input``),
otherwise to the intake of ``internal_profiling.site`` unless ``profile_dd_url`` names another
endpoint. Tags are ``extra_tags`` plus ``version:<agent version>``; the service is always
``security-agent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from host.config import Config, ConfigSchema

PREFIX = "security_agent.internal_profiling."
SERVICE = "security-agent"
DEFAULT_SITE = "datadoghq.com"
PROFILING_URL_TEMPLATE = "https://intake.profile.%s/v1/input"
PROFILING_LOCAL_URL_TEMPLATE = "http://%s/profiling/v1/input"
ENV_PREFIX = "DD_SECURITY_AGENT_INTERNAL_PROFILING_"

# key (under PREFIX), default, extra environment variables after DD_<KEY>
KEYS: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("enabled", False, ()),
    ("site", DEFAULT_SITE, ("DD_SITE",)),
    ("profile_dd_url", "", (ENV_PREFIX + "DD_URL", "DD_APM_INTERNAL_PROFILING_DD_URL")),
    ("api_key", "", ("DD_API_KEY",)),
    ("env", "", ("DD_ENV",)),
    ("period", "5m", ()),
    ("cpu_duration", "1m", ()),
    ("mutex_profile_fraction", 0, ()),
    ("block_profile_rate", 0, ()),
    ("enable_goroutine_stacktraces", False, ()),
    ("enable_block_profiling", False, ()),
    ("enable_mutex_profiling", False, ()),
    ("delta_profiles", True, ()),
    ("unix_socket", "", ()),
    ("extra_tags", [], ()),
    # Ours: how many local profile files to keep when the profiler extra is not installed.
    ("local_max_files", 12, ()),
)


def declare_keys(schema: ConfigSchema) -> None:
    for name, default, env in KEYS:
        schema.declare(PREFIX + name, default, env=env)


def profiling_url(site: str, profile_dd_url: str, trace_agent_url: str) -> str:
    """Where profiles are sent, computed as the Go agent's ``setupInternalProfiling`` does."""
    if trace_agent_url:
        return PROFILING_LOCAL_URL_TEMPLATE % trace_agent_url
    if profile_dd_url:
        return profile_dd_url
    return PROFILING_URL_TEMPLATE % site


@dataclass(frozen=True)
class ProfilingSettings:
    """Everything the profiler needs, read and validated once at start."""

    enabled: bool
    url: str
    site: str
    trace_agent_url: str
    """``TRACE_AGENT_URL`` from the environment (``host:port``), or ``""``."""
    api_key: str
    env: str
    period: float
    cpu_duration: float
    tags: tuple[str, ...]
    version: str
    max_files: int
    delta_profiles: bool
    unix_socket: str
    service: str = SERVICE

    @classmethod
    def from_config(
        cls, config: Config, version: str, environ: Mapping[str, str]
    ) -> ProfilingSettings:
        """Read the keys; a period, duration or file count that cannot work is a config
        error naming the key and where it was set."""
        period = config.get_duration(PREFIX + "period")
        cpu_duration = config.get_duration(PREFIX + "cpu_duration")
        max_files = config.get_int(PREFIX + "local_max_files")
        if period <= 0:
            raise config.value_error(PREFIX + "period", f"must be positive, got {period:g}s")
        if not 0 < cpu_duration <= period:
            raise config.value_error(
                PREFIX + "cpu_duration",
                f"must be positive and at most the period ({period:g}s), got {cpu_duration:g}s",
            )
        if max_files < 1:
            raise config.value_error(
                PREFIX + "local_max_files", f"must be at least 1, got {max_files}"
            )
        extra = [str(tag) for tag in config.get_list(PREFIX + "extra_tags")]
        site = config.get_str(PREFIX + "site")
        trace_agent_url = environ.get("TRACE_AGENT_URL", "")
        return cls(
            enabled=config.get_bool(PREFIX + "enabled"),
            url=profiling_url(site, config.get_str(PREFIX + "profile_dd_url"), trace_agent_url),
            site=site,
            trace_agent_url=trace_agent_url,
            api_key=config.get_str(PREFIX + "api_key"),
            env=config.get_str(PREFIX + "env"),
            period=period,
            cpu_duration=cpu_duration,
            tags=(*extra, f"version:{version}"),
            version=version,
            max_files=max_files,
            delta_profiles=config.get_bool(PREFIX + "delta_profiles"),
            unix_socket=config.get_str(PREFIX + "unix_socket"),
        )

    def extra_environment(self) -> dict[str, str]:
        """The variables ``ddtrace`` reads its endpoint from (it takes none as arguments).

        Through the local trace agent when ``TRACE_AGENT_URL`` is set, else straight to the
        intake of ``site`` with the API key (ddtrace's "agentless" mode).
        """
        if self.trace_agent_url:
            return {"DD_TRACE_AGENT_URL": f"http://{self.trace_agent_url}"}
        environment = {"DD_PROFILING_AGENTLESS": "true", "DD_SITE": self.site}
        if self.api_key:
            environment["DD_API_KEY"] = self.api_key
        return environment

    def tag_map(self) -> dict[str, str]:
        """The tags as ``key: value`` (a tag without a colon keeps an empty value)."""
        pairs = (tag.partition(":") for tag in self.tags)
        return {key: value for key, _, value in pairs}

    def to_json(self) -> dict[str, Any]:
        """For status: everything but the API key."""
        return {
            "enabled": self.enabled,
            "url": self.url,
            "service": self.service,
            "env": self.env,
            "period": self.period,
            "cpu_duration": self.cpu_duration,
            "tags": list(self.tags),
        }
