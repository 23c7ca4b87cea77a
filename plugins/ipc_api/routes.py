"""The route table: path templates with ``{name}`` segments, matched literal-first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote

from host.plugin_types import ApiRoute


class DuplicateRouteError(ValueError):
    pass


@dataclass(frozen=True)
class RouteEntry:
    route: ApiRoute
    owner: str
    segments: tuple[str, ...]

    @property
    def shape(self) -> tuple[str, ...]:
        """The template with parameter names erased: two routes of one shape collide."""
        return tuple("{}" if _is_param(s) else s for s in self.segments)

    @property
    def literal_count(self) -> int:
        return sum(not _is_param(s) for s in self.segments)


def _is_param(segment: str) -> bool:
    return len(segment) > 2 and segment.startswith("{") and segment.endswith("}")


def split_path(path: str) -> tuple[str, ...]:
    return tuple(path.strip("/").split("/")) if path.strip("/") else ()


_NO_PARAMS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Match:
    entry: RouteEntry
    params: Mapping[str, str]


class RouteTable:
    """Routes by shape; a shape taken by one owner cannot be taken by another."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, ...], RouteEntry] = {}
        self._literal: dict[tuple[str, ...], RouteEntry] = {}
        """Routes without parameters, by decoded segments."""
        self._verbatim: dict[str, Match] = {}
        """Routes without parameters by their path as written: most requests are exactly
        that (``/agent/status/health`` is polled), and one lookup is all they cost."""

    def add(self, route: ApiRoute, owner: str) -> None:
        if not route.path.startswith("/"):
            raise ValueError(f"route path must start with '/': {route.path!r}")
        if not route.methods:
            raise ValueError(f"route {route.path} has no methods")
        entry = RouteEntry(route, owner, split_path(route.path))
        taken = self._entries.get(entry.shape)
        if taken is not None:
            raise DuplicateRouteError(f"route {route.path} is already provided by {taken.owner}")
        self._entries[entry.shape] = entry
        if entry.literal_count == len(entry.segments):
            self._literal[entry.segments] = entry
            self._verbatim[route.path] = Match(entry, _NO_PARAMS)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[RouteEntry]:
        return list(self._entries.values())

    def match(self, raw_path: str) -> Match | None:
        """The best route for a request path (percent-encoded), literal segments first.

        A returned :class:`Match` may be shared between requests: do not change it.
        """
        verbatim = self._verbatim.get(raw_path)
        if verbatim is not None:
            return verbatim
        parts = tuple(unquote(p, errors="replace") for p in split_path(raw_path))
        exact = self._literal.get(parts)
        if exact is not None:
            return Match(exact, {})
        best: Match | None = None
        for entry in self._entries.values():
            if len(entry.segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for template, part in zip(entry.segments, parts, strict=True):
                if _is_param(template):
                    if not part:
                        break
                    params[template[1:-1]] = part
                elif part != template:
                    break
            else:
                if best is None or entry.literal_count > best.entry.literal_count:
                    best = Match(entry, params)
        return best
