"""Finding plugins: the host's own loop over the ``security_agent`` entry points.

pluggy's ``load_setuptools_entrypoints`` aborts on the first plugin that fails to import; an
agent must not die because one third-party wheel is broken. So every entry point is loaded and
registered on its own, and a failure becomes a :class:`PluginRecord` in state ``failed`` that
``security-agent plugins``, status and health show. ``strict`` turns any failure into a
start-up error, for CI and for operators who prefer to fail fast.
"""

from __future__ import annotations

import enum
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import importlib_metadata
import pluggy

from host import PROJECT_NAME, hookspecs

HOOK_PREFIX = "security_agent_"


class PluginState(enum.Enum):
    LOADED = "loaded"
    FAILED = "failed"
    DISABLED = "disabled"


class DiscoveryError(Exception):
    """Raised in strict mode, or for an allow/deny list naming no installed plugin."""


class EntryPointLike(Protocol):
    """What discovery needs of an entry point (tests pass simple fakes)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> Any: ...


@dataclass
class PluginRecord:
    """One discovered plugin and what became of it."""

    name: str
    distribution: str
    version: str
    module: str
    state: PluginState
    error: str | None = None
    traceback: str | None = None
    hooks: list[str] = field(default_factory=list)
    plugin: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "state": self.state.value,
            "error": self.error,
            "hooks": list(self.hooks),
        }


def installed_entry_points() -> list[EntryPointLike]:
    """The ``security_agent`` entry points of every installed distribution."""
    return list(importlib_metadata.entry_points(group=PROJECT_NAME))


def _distribution_of(ep: EntryPointLike) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("unknown", "unknown")
    name = dist.metadata["Name"] if dist.metadata is not None else None
    return (str(name or getattr(dist, "name", "unknown")), str(dist.version or "unknown"))


def call_plugin_hook(
    pm: pluggy.PluginManager, plugin_name: str, hook_name: str, **kwargs: Any
) -> Any:
    """Call one plugin's implementation of a hook (``None`` when it has none), passing only
    the arguments that implementation takes, as pluggy would."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.plugin_name == plugin_name:
            return impl.function(**{name: kwargs[name] for name in impl.argnames})
    return None


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _short_error(exc: BaseException) -> str:
    """One line for listings: the exception type and its message with newlines folded."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Discovery:
    """Loads and registers plugins into a plugin manager, keeping a record of each.

    ``allow`` (when not ``None``) keeps only the named plugins; ``deny`` disables the named
    ones. Names in either list that match no installed plugin are an error, because a typo
    there would otherwise silently run (or silently not run) a security component.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        *,
        entry_points: Callable[[], Iterable[EntryPointLike]] | None = None,
        allow: Sequence[str] | None = None,
        deny: Sequence[str] = (),
        strict: bool = False,
    ) -> None:
        self.pm = pm
        self._entry_points = entry_points or installed_entry_points
        self._allow = None if allow is None else list(allow)
        self._deny = list(deny)
        self.strict = strict
        self.records: list[PluginRecord] = []

    def run(self) -> list[PluginRecord]:
        """Discover, load and register every plugin; return the records in discovery order."""
        eps = sorted(self._entry_points(), key=lambda ep: ep.name)
        known = {ep.name for ep in eps}
        for key, names in (
            ("plugins.enabled", self._allow or []),
            ("plugins.disabled", self._deny),
        ):
            unknown = sorted(set(names) - known)
            if unknown:
                raise DiscoveryError(
                    f"{key}: unknown plugin(s) {', '.join(unknown)}; "
                    f"installed: {', '.join(sorted(known)) or 'none'}"
                )
        for ep in eps:
            self.records.append(self._load_one(ep))
        failed = [r for r in self.records if r.state is PluginState.FAILED]
        if self.strict and failed:
            details = "; ".join(f"{r.name} ({r.distribution}): {r.error}" for r in failed)
            raise DiscoveryError(f"strict plugin mode: {len(failed)} plugin(s) failed: {details}")
        return self.records

    def _load_one(self, ep: EntryPointLike) -> PluginRecord:
        dist, version = _distribution_of(ep)
        record = PluginRecord(
            name=ep.name,
            distribution=dist,
            version=version,
            module=ep.value,
            state=PluginState.LOADED,
        )
        if any(r.name == ep.name for r in self.records):
            owner = next(r for r in self.records if r.name == ep.name)
            return self._fail(record, f"name already taken by {owner.distribution}")
        if (self._allow is not None and ep.name not in self._allow) or ep.name in self._deny:
            record.state = PluginState.DISABLED
            return record
        try:
            plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            return self._fail(record, f"import failed: {_short_error(exc)}", exc)
        try:
            self.pm.register(plugin, name=ep.name)
        except Exception as exc:
            return self._fail(record, f"registration failed: {_short_error(exc)}", exc)
        unknown_hooks = self._unknown_hooks(plugin)
        if unknown_hooks:
            self.pm.unregister(plugin)
            return self._fail(record, f"implements unknown hook(s): {', '.join(unknown_hooks)}")
        record.plugin = plugin
        record.hooks = sorted(
            caller.name
            for caller in self.pm.get_hookcallers(plugin) or []
            if caller.spec is not None
        )
        return record

    def _unknown_hooks(self, plugin: Any) -> list[str]:
        # pluggy's check_pending() is global and raises on the first offender; checking per
        # plugin lets one misspelt hook fail only the plugin that has it.
        unknown = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not impl.optionalhook:
                    unknown.append(caller.name)
        return sorted(set(unknown))

    def _fail(
        self, record: PluginRecord, error: str, exc: BaseException | None = None
    ) -> PluginRecord:
        record.state = PluginState.FAILED
        record.error = error
        if exc is not None:
            record.traceback = "".join(traceback.format_exception(exc))
        return record
