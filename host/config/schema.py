"""The keys plugins declare: their defaults, environment variables and meaning."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from host.config.nested import split_key


@dataclass(frozen=True)
class KeySpec:
    """Everything declared about one key."""

    key: str
    default: Any
    env: tuple[str, ...] = ()
    """Extra environment variables, after the automatic ``DD_<KEY>``."""
    description: str = ""
    path: bool = False
    owner: str | None = None

    @property
    def env_vars(self) -> tuple[str, ...]:
        """The variables read for this key, in the order tried: ``DD_<KEY>`` then the aliases."""
        automatic = "DD_" + self.key.upper().replace(".", "_")
        return tuple(dict.fromkeys((automatic, *self.env)))


def _same_default(first: Any, second: Any) -> bool:
    # 1, 1.0 and True compare equal in Python but convert environment values differently.
    return type(first) is type(second) and bool(first == second)


def _declarer(owner: str | None) -> str:
    return "the host" if owner is None else f"plugin {owner!r}"


class ConfigSchema:
    """The configuration keys known to the agent; what ``security_agent_config_schema`` gets.

    Declare each key your plugin reads, once, with its default::

        schema.declare("compliance_config.check_interval", "20m",
                       description="How often the benchmarks run.")

    The type of the default decides how ``DD_*`` environment values are converted (bool, int,
    float, list from a whitespace-separated string, dict from a JSON object, anything else kept
    as a string), so declare durations and sizes with string defaults ("20m", "10MB").
    Declaring a key another plugin already declared is fine when the defaults agree.
    """

    def __init__(self) -> None:
        self._specs: dict[str, KeySpec] = {}
        self._listeners: list[Callable[[KeySpec], None]] = []

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
        """Declare ``key`` (dotted, e.g. ``"security_agent.cmd_port"``) with its default.

        ``env`` lists extra environment variables read after ``DD_<KEY>``, the first one set
        wins. ``path=True`` makes a relative value from a config file resolve against that
        file's directory. ``owner`` is filled in by the host with your plugin's name.

        Raises ``ValueError`` when the key is malformed, was declared with another default, or
        nests under (or over) a key whose default is not a mapping; raises ``ConfigError`` when
        the environment holds a value that does not convert to the default's type.
        """
        split_key(key)
        aliases = (env,) if isinstance(env, str) else tuple(env)
        spec = KeySpec(key, copy.deepcopy(default), aliases, description, path, owner)
        existing = self._specs.get(key)
        if existing is not None:
            if not _same_default(existing.default, default):
                raise ValueError(
                    f"{key}: declared twice with different defaults: {existing.default!r} by "
                    f"{_declarer(existing.owner)} and {default!r} by {_declarer(owner)}"
                )
            spec = replace(
                existing,
                env=tuple(dict.fromkeys((*existing.env, *aliases))),
                description=existing.description or description,
                path=existing.path or path,
            )
        else:
            self._check_nesting(spec)
        self._specs[key] = spec
        for listener in list(self._listeners):
            listener(spec)

    def _check_nesting(self, spec: KeySpec) -> None:
        # "a" with default 5 and "a.b" cannot both hold: the file layout has one shape.
        for other in self._specs.values():
            if spec.key.startswith(other.key + "."):
                outer, inner = other, spec
            elif other.key.startswith(spec.key + "."):
                outer, inner = spec, other
            else:
                continue
            if not isinstance(outer.default, Mapping):
                raise ValueError(
                    f"{inner.key}: cannot be declared under {outer.key!r}, whose default "
                    f"{outer.default!r} (declared by {_declarer(outer.owner)}) is not a mapping"
                )

    def owned_by(self, owner: str) -> ConfigSchema:
        """A view of this schema that records every declaration as ``owner``'s.

        The host hands each plugin such a view, so that a clash names both plugins.
        """
        view = _OwnedSchema(owner)
        view._specs = self._specs
        view._listeners = self._listeners
        return view

    def keys(self) -> list[str]:
        """Every declared key, sorted."""
        return sorted(self._specs)

    def specs(self) -> list[KeySpec]:
        """Everything declared, sorted by key (what ``config list`` shows)."""
        return [self._specs[key] for key in sorted(self._specs)]

    def default(self, key: str) -> Any:
        """A copy of the declared default of ``key``; ``KeyError`` if it was never declared."""
        return copy.deepcopy(self.spec(key).default)

    def is_declared(self, key: str) -> bool:
        """Whether some plugin (or the host) declared ``key``."""
        return key in self._specs

    def spec(self, key: str) -> KeySpec:
        """Everything declared about ``key``; ``KeyError`` if it was never declared."""
        try:
            return self._specs[key]
        except KeyError:
            raise KeyError(f"configuration key {key!r} was never declared") from None

    def _add_listener(self, listener: Callable[[KeySpec], None]) -> None:
        # The Config that owns this schema applies each declaration (default and environment
        # layers) as it happens, so a plugin declaring through the bare schema gets the same
        # start-up errors as one calling Config.declare.
        self._listeners.append(listener)


class _OwnedSchema(ConfigSchema):
    def __init__(self, owner: str) -> None:
        super().__init__()
        self._owner = owner

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
        super().declare(
            key, default, env=env, description=description, path=path, owner=owner or self._owner
        )
