"""One configuration source's values, and where in that source each value was written."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from host.config import nested
from host.config.nested import MISSING
from host.config.sources import Source


@dataclass(frozen=True)
class Origin:
    """Where one value was written: what messages call it, and for files, its directory."""

    label: str
    """``"/etc/sa/security-agent.yaml:12"`` or ``"DD_SITE (environment)"``."""

    directory: str | None = None
    """The absolute directory of the file that set the value; relative paths resolve there."""


class Layer:
    """The values of one ``Source`` as a nested mapping, plus the origin of each dotted key."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.values: dict[str, Any] = {}
        self._origins: dict[str, Origin] = {}

    def lookup(self, key: str) -> Any:
        """The stored value, or ``MISSING``; an empty (``None``) value counts as missing.

        That is viper's rule: ``api_key:`` left empty in a file does not hide the default.
        """
        value = nested.find(self.values, key)
        return MISSING if value is None else value

    def snapshot(self) -> dict[str, Any]:
        """A copy of everything this layer holds, empty values included."""
        return copy.deepcopy(self.values)

    def origin(self, key: str) -> Origin | None:
        """The origin of ``key``, or of the nearest enclosing key that was written as a whole."""
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            found = self._origins.get(".".join(parts[:end]))
            if found is not None:
                return found
        return None

    def assign(
        self, key: str, value: Any, origin: Origin | None = None, *, merge: bool = False
    ) -> None:
        """Store ``value`` at ``key``; with ``merge`` a mapping is merged into the one there."""
        current = nested.find(self.values, key)
        if merge and isinstance(value, Mapping) and isinstance(current, Mapping):
            value = nested.deep_merge(current, value)
        else:
            self._forget_origins(key)
        nested.assign(self.values, key, copy.deepcopy(value))
        if origin is not None:
            self._origins[key] = origin

    def remove(self, key: str) -> None:
        """Forget ``key`` and everything under it."""
        nested.remove(self.values, key)
        self._forget_origins(key)

    def merge_file(
        self, values: Mapping[str, Any], origin_of: Callable[[str], Origin | None]
    ) -> None:
        """Deep-merge a loaded file over this layer, recording ``origin_of(dotted key)``."""
        self._merge_into(self.values, values, "", origin_of)

    def _merge_into(
        self,
        target: dict[str, Any],
        incoming: Mapping[str, Any],
        prefix: str,
        origin_of: Callable[[str], Origin | None],
    ) -> None:
        for name, value in incoming.items():
            dotted = prefix + name
            current = target.get(name)
            if value is None and name in target:
                # An empty value in a later file does not erase what an earlier file set.
                continue
            if isinstance(value, Mapping):
                # Walk into new mappings too, so every key below gets its own origin.
                if not isinstance(current, dict):
                    self._forget_origins(dotted)
                    current = target[name] = {}
                self._merge_into(current, value, dotted + ".", origin_of)
            else:
                self._forget_origins(dotted)
                target[name] = copy.deepcopy(value)
            origin = origin_of(dotted)
            if origin is not None:
                self._origins[dotted] = origin

    def _forget_origins(self, key: str) -> None:
        below = key + "."
        for recorded in [k for k in self._origins if k == key or k.startswith(below)]:
            del self._origins[recorded]
