"""The merged, layered configuration every plugin reads through ``agent.config``."""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from host.config import conversions, nested
from host.config.conversions import ConversionError
from host.config.environment import read_env_value
from host.config.errors import ConfigError
from host.config.layer import Layer, Origin
from host.config.nested import MISSING
from host.config.schema import ConfigSchema, KeySpec
from host.config.sources import Source
from host.config.yaml_file import ParsedFile

_T = TypeVar("_T")

# Sources whose origin names a place the user can go and fix (a file line, a variable).
_LOCATED_SOURCES = (Source.FILE, Source.ENV)


class Config:
    """The agent's configuration: five layers, the highest one holding a key wins.

    From lowest to highest: declared defaults, the config files, ``DD_*`` environment
    variables, values the agent set while running, values an operator set with ``config set``
    (see ``Source``). Read with the typed getters; each raises ``ConfigError`` naming the file
    and line (or the variable) of a value of the wrong shape::

        port = agent.config.get_int("security_agent.cmd_port")
        interval = agent.config.get_duration("compliance_config.check_interval")  # seconds

    Keys are dotted paths into the YAML mappings and are case-sensitive. An empty value
    (``api_key:`` with nothing after it) counts as not set. Build one with ``load_config``.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        schema: ConfigSchema | None = None,
        cwd: str | None = None,
    ) -> None:
        """An empty configuration; ``env`` defaults to ``os.environ`` as it is now.

        ``cwd`` is where relative paths from the environment or ``set()`` resolve; it defaults
        to the current directory at creation, so a later ``chdir`` does not move them.
        """
        self.schema = schema if schema is not None else ConfigSchema()
        self.files: list[str] = []
        self._environ = dict(os.environ if env is None else env)
        self._cwd = os.path.abspath(cwd) if cwd is not None else os.getcwd()
        self._config_dir: str | None = None
        self._layers = {source: Layer(source) for source in Source}
        # Operators change settings from the reactor thread while checks read from the pool.
        self._lock = threading.RLock()
        self.schema._add_listener(self._apply_declaration)
        for spec in self.schema.specs():
            self._apply_declaration(spec)

    # --- declaring ----------------------------------------------------------------------------

    def declare(
        self,
        key: str,
        default: Any,
        *,
        env: Sequence[str] = (),
        description: str = "",
        path: bool = False,
        owner: str | None = None,
    ) -> None:
        """Declare ``key`` as ``ConfigSchema.declare`` does and read its environment variables.

        Raises ``ConfigError`` right away when a ``DD_*`` variable for the key does not convert
        to the type of ``default``.
        """
        self.schema.declare(key, default, env=env, description=description, path=path, owner=owner)

    def _apply_declaration(self, spec: KeySpec) -> None:
        found = read_env_value(spec, self._environ)
        with self._lock:
            # Merge mapping defaults so "a" = {} declared after "a.b" = 1 keeps a.b.
            self._layers[Source.DEFAULT].assign(spec.key, spec.default, merge=True)
            if found is not None:
                name, value = found
                self._layers[Source.ENV].assign(
                    spec.key, value, Origin(f"{name} (environment)"), merge=True
                )

    def _merge_file(self, parsed: ParsedFile) -> None:
        directory = os.path.dirname(os.path.abspath(parsed.path))

        def origin_of(dotted: str) -> Origin | None:
            line = parsed.lines.get(dotted)
            label = parsed.path if line is None else f"{parsed.path}:{line}"
            return Origin(label, directory)

        with self._lock:
            self._layers[Source.FILE].merge_file(parsed.values, origin_of)
            self.files.append(parsed.path)
            self._config_dir = directory

    # --- reading ------------------------------------------------------------------------------

    def get(self, key: str, default: Any = MISSING) -> Any:
        """The value of ``key`` from the highest layer that holds it.

        A mapping is merged key by key across all the layers (``get("compliance_config")``).
        Returns ``default``, or None without one, when no layer holds the key. The result is a
        copy: changing it does not change the configuration.
        """
        with self._lock:
            value = self._effective(key)
        if value is MISSING:
            return None if default is MISSING else default
        return value

    def get_str(self, key: str) -> str:
        """The value as a string; numbers and booleans are spelled out, None is ``""``."""
        return self._typed(key, conversions.to_str)

    def get_int(self, key: str) -> int:
        """The value as an integer (``5010`` or ``"5010"``); None is 0."""
        return self._typed(key, conversions.to_int)

    def get_float(self, key: str) -> float:
        """The value as a float; None is 0.0."""
        return self._typed(key, conversions.to_float)

    def get_bool(self, key: str) -> bool:
        """The value as a boolean: true/false/yes/no/on/off/1/0 in any case; None is False."""
        return self._typed(key, conversions.to_bool)

    def get_list(self, key: str) -> list[Any]:
        """The value as a list; a string is split on whitespace; None is ``[]``."""
        return self._typed(key, conversions.to_list)

    def get_duration(self, key: str) -> float:
        """The value in seconds: a number of seconds, or "500ms", "10s", "20m", "1h30m"."""
        return self._typed(key, conversions.to_duration)

    def get_size(self, key: str) -> int:
        """The value in bytes: an integer, or "10Mb", "512KB", "1GB", "100" (k = 1024)."""
        return self._typed(key, conversions.to_size)

    def _typed(self, key: str, convert: Callable[[Any], _T]) -> _T:
        try:
            return convert(self.get(key))
        except ConversionError as error:
            raise self.value_error(key, str(error)) from None

    def value_error(self, key: str, problem: str) -> ConfigError:
        """A ``ConfigError`` for the current value of ``key``, prefixed with where it was set.

        For your own checks of a value::

            if interval <= 0:
                raise config.value_error("my_plugin.interval", f"must be positive, got {interval}")

        gives ``/etc/sa/security-agent.yaml:7: my_plugin.interval: must be positive, got -1``.
        """
        with self._lock:
            layer = self._top_layer(key)
            origin = layer.origin(key) if layer and layer.source in _LOCATED_SOURCES else None
        prefix = f"{origin.label}: " if origin is not None else ""
        return ConfigError(f"{prefix}{key}: {problem}")

    # --- where values come from ---------------------------------------------------------------

    def is_set(self, key: str) -> bool:
        """Whether any layer other than the defaults holds a (non-empty) value for ``key``."""
        with self._lock:
            return any(
                layer.lookup(key) is not MISSING
                for source, layer in self._layers.items()
                if source is not Source.DEFAULT
            )

    def source(self, key: str) -> Source:
        """The layer the effective value of ``key`` comes from (``DEFAULT`` if none holds it)."""
        with self._lock:
            layer = self._top_layer(key)
        return Source.DEFAULT if layer is None else layer.source

    def origin(self, key: str) -> str:
        """Where the effective value was written, for messages and ``config`` output.

        ``"/etc/sa/security-agent.yaml:12"``, ``"DD_SITE (environment)"``, or the source name:
        ``"default"``, ``"agent-runtime"``, ``"cli"``.
        """
        with self._lock:
            layer = self._top_layer(key)
            if layer is None:
                return Source.DEFAULT.value
            found = layer.origin(key) if layer.source in _LOCATED_SOURCES else None
        return layer.source.value if found is None else found.label

    def all_sources(self, key: str) -> dict[str, Any]:
        """``{source name: value}`` for every layer holding ``key``, lowest priority first."""
        with self._lock:
            return {
                source.value: copy.deepcopy(value)
                for source, layer in self._layers.items()
                if (value := layer.lookup(key)) is not MISSING
            }

    def by_source(self) -> dict[str, dict[str, Any]]:
        """Each layer's nested values as written, keyed by source name; all five are present."""
        with self._lock:
            return {source.value: layer.snapshot() for source, layer in self._layers.items()}

    def as_dict(self) -> dict[str, Any]:
        """The whole merged configuration as a nested mapping (a copy)."""
        with self._lock:
            merged: dict[str, Any] = {}
            for layer in self._layers.values():
                merged = nested.deep_merge(merged, layer.values, skip_none=True)
            self._resolve_paths_under(merged, "")
        return merged

    def config_dir(self) -> str | None:
        """The absolute directory of the last config file loaded, None when none was."""
        return self._config_dir

    # --- changing -----------------------------------------------------------------------------

    def set(self, key: str, value: Any, source: Source = Source.RUNTIME) -> None:
        """Store ``value`` for ``key`` in the layer of ``source``, replacing what it held."""
        with self._lock:
            self._layers[source].assign(key, value)

    def unset(self, key: str, source: Source) -> None:
        """Remove ``key`` (and anything under it) from the layer of ``source``."""
        with self._lock:
            self._layers[source].remove(key)

    # --- internals ----------------------------------------------------------------------------

    def _top_layer(self, key: str) -> Layer | None:
        for layer in reversed(self._layers.values()):
            if layer.lookup(key) is not MISSING:
                return layer
        return None

    def _effective(self, key: str) -> Any:
        found = [
            (layer, value)
            for layer in self._layers.values()
            if (value := layer.lookup(key)) is not MISSING
        ]
        if not found:
            return MISSING
        top_layer, top = found[-1]
        if not isinstance(top, Mapping):
            return self._resolve_path(key, copy.deepcopy(top), top_layer)
        # Merge the run of mappings at the top; a lower non-mapping is hidden by them.
        merged: dict[str, Any] = {}
        for _, value in reversed(found):
            if not isinstance(value, Mapping):
                break
            merged = nested.deep_merge(value, merged, skip_none=True)
        self._resolve_paths_under(merged, key + ".")
        return merged

    def _path_spec(self, key: str) -> KeySpec | None:
        if not self.schema.is_declared(key):
            return None
        spec = self.schema.spec(key)
        return spec if spec.path else None

    def _resolve_path(self, key: str, value: Any, layer: Layer) -> Any:
        if self._path_spec(key) is None or layer.source is Source.DEFAULT:
            return value
        base = self._cwd
        if layer.source is Source.FILE:
            origin = layer.origin(key)
            if origin is not None and origin.directory is not None:
                base = origin.directory
        if isinstance(value, str):
            return _join(base, value)
        if isinstance(value, list):
            return [_join(base, item) if isinstance(item, str) else item for item in value]
        return value

    def _resolve_paths_under(self, tree: dict[str, Any], prefix: str) -> None:
        for spec in self.schema.specs():
            key = spec.key
            if not spec.path or not key.startswith(prefix):
                continue
            inner = key[len(prefix) :]
            value = nested.find(tree, inner)
            layer = self._top_layer(key)
            if value is MISSING or value is None or layer is None:
                continue
            nested.assign(tree, inner, self._resolve_path(key, value, layer))


def _join(base: str, value: str) -> str:
    # An empty string means "not configured" and stays empty.
    if not value or os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(base, value))
