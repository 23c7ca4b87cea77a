"""Reading field values out of event dicts (shared by the compiled closures and the index)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plugins.secl.model import FieldSpec, Path

Getter = Callable[[Any], Any]

_MISSING = (KeyError, TypeError, IndexError)


def path_getter(path: Path, zero: Any) -> Getter:
    """A function reading ``path`` from a nested dict, ``zero`` when absent or None.

    Unrolled for the usual depths because this runs for every field of every event."""
    if len(path) == 1:
        (a,) = path

        def get1(ev: Any) -> Any:
            try:
                v = ev[a]
            except _MISSING:
                return zero
            return zero if v is None else v

        return get1
    if len(path) == 2:
        a, b = path

        def get2(ev: Any) -> Any:
            try:
                v = ev[a][b]
            except _MISSING:
                return zero
            return zero if v is None else v

        return get2
    if len(path) == 3:
        a, b, c = path

        def get3(ev: Any) -> Any:
            try:
                v = ev[a][b][c]
            except _MISSING:
                return zero
            return zero if v is None else v

        return get3

    def get_n(ev: Any) -> Any:
        try:
            for key in path:
                ev = ev[key]
        except _MISSING:
            return zero
        return zero if ev is None else ev

    return get_n


def field_getter(spec: FieldSpec, length: bool = False) -> Getter:
    """The value of a field: a scalar, or a tuple for list and iterator fields."""
    raw_zero = None if spec.derive else spec.zero
    read = path_getter(spec.path, raw_zero)
    derive = spec.derive
    is_list = spec.is_list
    zero = spec.zero

    def one(element: Any) -> Any:
        v = read(element)
        if derive is not None:
            v = derive(v)
        if is_list:
            v = tuple(v) if isinstance(v, list | tuple) else ()
        if length:
            return len(v) if isinstance(v, str | tuple) else 0
        return v

    if spec.iterator is None:
        if derive is None and not is_list and not length:
            return read
        return one
    elements = path_getter(spec.iterator, ())
    if derive is None and not is_list and not length:

        def many_plain(ev: Any) -> tuple[Any, ...]:
            items = elements(ev)
            if not isinstance(items, list | tuple):
                return ()
            return tuple([read(element) for element in items])

        return many_plain

    def many(ev: Any) -> tuple[Any, ...]:
        items = elements(ev)
        if not isinstance(items, list | tuple):
            return ()
        out: list[Any] = []
        for element in items:
            v = one(element)
            if is_list and not length:
                out.extend(v)
            else:
                out.append(v)
        return tuple(out)

    del zero
    return many


Hits = tuple[int, ...]


def cached_lookup(
    spec: FieldSpec, length: bool, cache: dict[Any, Hits], compute: Callable[[Any], Hits]
) -> Callable[[Any], Hits]:
    """``event -> rule indexes approved by the field's value``: read the field, then the
    memo ``cache``, calling ``compute(value)`` on a miss. For plain 2- and 3-level fields the
    read is inlined: this runs for every indexed field of every event."""
    simple = spec.iterator is None and spec.derive is None and not spec.is_list and not length
    zero = spec.zero
    if simple and len(spec.path) == 3:
        a, b, c = spec.path

        def lookup3(ev: Any) -> Hits:
            try:
                v = ev[a][b][c]
            except _MISSING:
                v = zero
            try:
                hits = cache.get(v)
            except TypeError:  # unhashable value from a malformed event
                return compute(v)
            return compute(zero if v is None else v) if hits is None else hits

        return lookup3
    if simple and len(spec.path) == 2:
        a, b = spec.path

        def lookup2(ev: Any) -> Hits:
            try:
                v = ev[a][b]
            except _MISSING:
                v = zero
            try:
                hits = cache.get(v)
            except TypeError:
                return compute(v)
            return compute(zero if v is None else v) if hits is None else hits

        return lookup2
    get = field_getter(spec, length)

    def lookup(ev: Any) -> Hits:
        v = get(ev)
        try:
            hits = cache.get(v)
        except TypeError:
            return compute(v)
        return compute(v) if hits is None else hits

    return lookup
