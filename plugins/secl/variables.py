"""User variables: what a rule's ``set`` action writes and ``${name}`` reads.

Scope comes from the name, as in Datadog: ``process.<name>`` is kept per process (keyed by the
event's ``process.pid``), ``container.<name>`` per container (``process.container.id``), any
other name is global. A value may carry a ttl (seconds on the store's clock); an expired value
reads as the declared default. ``append=True`` keeps a list (oldest dropped beyond ``size``).

Usage by the runtime security plugin::

    store = VariableStore(clock=reactor.seconds)
    store.declare("process.suspicious", "bool")          # before compiling rules that read it
    rules = RuleSet.compile(defs, variables=store)
    ...
    store.set("process.suspicious", True, event, ttl=600)  # when a rule's `set` action runs
    store.forget_process(pid)                              # on exit events
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from plugins.secl.checker import VarDecl
from plugins.secl.errors import SECLError
from plugins.secl.model import ZERO


def _scope_key(name: str, event: Any) -> tuple[str, Any]:
    try:
        if name.startswith("process."):
            return "process", event["process"]["pid"]
        if name.startswith("container."):
            return "container", event["process"]["container"]["id"]
    except (KeyError, TypeError):
        return "missing", None
    return "global", None


class VariableStore:
    """Typed, scoped variables with optional ttl. Not thread-safe: use from one thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.declarations: dict[str, VarDecl] = {}
        self._defaults: dict[str, Any] = {}
        # name -> scope key -> (value, expiry or None)
        self._values: dict[str, dict[tuple[str, Any], tuple[Any, float | None]]] = {}

    def declare(self, name: str, kind: str, is_list: bool = False, default: Any = None) -> None:
        """Declare a variable; kinds are ``string``, ``int`` or ``bool``. Redeclaring with the
        same type is a no-op, with another type a :class:`SECLError`."""
        decl = VarDecl(kind, is_list)
        if kind not in ("string", "int", "bool"):
            raise SECLError(f"expected a string, int or bool variable, got {kind}",
                            source_id=name, kind="variable")  # fmt: skip
        old = self.declarations.get(name)
        if old is not None and old != decl:
            raise SECLError(
                f"expected type {_type_name(old)} as declared before, got {_type_name(decl)}",
                source_id=name,
                kind="variable",
            )
        self.declarations[name] = decl
        self._defaults[name] = () if is_list else (ZERO[kind] if default is None else default)
        self._values.setdefault(name, {})

    def set(
        self,
        name: str,
        value: Any,
        event: Any = None,
        *,
        ttl: float | None = None,
        append: bool = False,
        size: int = 100,
    ) -> None:
        """Store ``value`` in the scope ``event`` selects; ``append`` adds to a list variable."""
        decl = self.declarations.get(name)
        if decl is None:
            raise SECLError("expected a declared variable", source_id=name, kind="variable")
        key = _scope_key(name, event)
        if key[0] == "missing":
            return  # no process/container to attach to: nothing to remember
        expiry = None if ttl is None else self.clock() + ttl
        slot = self._values[name]
        if append or decl.is_list:
            current = self.get(name, event) if append else ()
            items = (*current, *(value if isinstance(value, list | tuple) else (value,)))
            value = items[-size:]
        slot[key] = (value, expiry)

    def get(self, name: str, event: Any = None) -> Any:
        """The value in ``event``'s scope, or the default when unset or expired."""
        slot = self._values.get(name)
        if not slot:
            return self._defaults.get(name)
        entry = slot.get(_scope_key(name, event))
        if entry is None:
            return self._defaults[name]
        value, expiry = entry
        if expiry is not None and self.clock() >= expiry:
            del slot[_scope_key(name, event)]
            return self._defaults[name]
        return value

    def forget_process(self, pid: int) -> None:
        """Drop every process-scoped value of ``pid`` (call on exit)."""
        for slot in self._values.values():
            slot.pop(("process", pid), None)

    def forget_container(self, container_id: str) -> None:
        for slot in self._values.values():
            slot.pop(("container", container_id), None)

    def expire(self) -> int:
        """Drop expired values (call periodically); returns how many were dropped."""
        now = self.clock()
        dropped = 0
        for slot in self._values.values():
            for key in [k for k, (_, exp) in slot.items() if exp is not None and now >= exp]:
                del slot[key]
                dropped += 1
        return dropped

    def carry_from(self, old: VariableStore) -> list[str]:
        """Copy ``old``'s values (with their expiry) for every variable this store declares
        with the same type; returns the names carried. Used when a policy reload compiles a
        new store, so values a ``set`` action wrote survive the reload."""
        carried = []
        for name, decl in self.declarations.items():
            if old.declarations.get(name) != decl:
                continue
            values = old._values.get(name)
            if values:
                self._values[name] = dict(values)
                carried.append(name)
        return carried

    def __len__(self) -> int:
        return sum(len(slot) for slot in self._values.values())


def _type_name(decl: VarDecl) -> str:
    return f"list of {decl.kind}" if decl.is_list else decl.kind
