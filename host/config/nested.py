"""Nested mappings addressed by dotted keys ("compliance_config.host_benchmarks.enabled").

Every layer stores its values as the nested mapping YAML produces; these helpers read and
write one dotted key in such a mapping and merge two of them.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from typing import Any


class Missing(enum.Enum):
    """The "no value here" marker; ``None`` cannot serve, an empty YAML value is ``None``."""

    MISSING = "missing"


MISSING = Missing.MISSING


def split_key(key: str) -> list[str]:
    """The parts of a dotted key; raises ValueError for a key no YAML file could spell."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a configuration key must be a non-empty string, got {key!r}")
    parts = key.split(".")
    if any(not part for part in parts):
        raise ValueError(f"{key!r} is not a valid configuration key: it has an empty part")
    return parts


def find(tree: Mapping[str, Any], key: str) -> Any:
    """The value at ``key`` in ``tree``, or ``MISSING``."""
    return _find(tree, key.split("."))


def _find(node: Mapping[str, Any], parts: list[str]) -> Any:
    # Longest prefix first: a file may spell a nested key flat ("security_agent.cmd_port: 1"),
    # which viper accepts too.
    for end in range(len(parts), 0, -1):
        head = ".".join(parts[:end])
        if head not in node:
            continue
        value = node[head]
        if end == len(parts):
            return value
        if isinstance(value, Mapping):
            found = _find(value, parts[end:])
            if found is not MISSING:
                return found
    return MISSING


def assign(tree: dict[str, Any], key: str, value: Any) -> None:
    """Store ``value`` at ``key``, replacing whatever non-mapping stands in the way."""
    *parents, last = split_key(key)
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[last] = value


def remove(tree: dict[str, Any], key: str) -> bool:
    """Delete ``key``; mappings left empty by the deletion go too. Returns whether it existed."""
    parts = split_key(key)
    path: list[dict[str, Any]] = [tree]
    for part in parts[:-1]:
        child = path[-1].get(part)
        if not isinstance(child, dict):
            return False
        path.append(child)
    if parts[-1] not in path[-1]:
        return False
    del path[-1][parts[-1]]
    # Prune upwards so an unset key reads as never set, not as an empty mapping.
    for depth in range(len(path) - 1, 0, -1):
        if path[depth]:
            break
        del path[depth - 1][parts[depth - 1]]
    return True


def deep_merge(
    base: Mapping[str, Any], override: Mapping[str, Any], *, skip_none: bool = False
) -> dict[str, Any]:
    """A new mapping: ``override`` over ``base``, mappings merged key by key, the rest replaced.

    With ``skip_none`` an empty value in ``override`` keeps the value of ``base``: an empty
    ``key:`` in a file means "no value", not "erase the default".
    """
    result = copy.deepcopy(dict(base))
    for key, value in override.items():
        if skip_none and value is None and key in result:
            continue
        current = result.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            result[key] = deep_merge(current, value, skip_none=skip_none)
        else:
            result[key] = copy.deepcopy(value)
    return result
