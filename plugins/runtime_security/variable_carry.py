"""Keeping ``set`` variable values across a policy reload.

A reload compiles a fresh :class:`plugins.secl.VariableStore`; without this step every value a
rule's ``set`` action wrote (a process marked suspicious, a counter of failed logins) would be
forgotten each time a policy file changes. A variable keeps its values when the new policies
still declare it with the same type (kind and list-ness); a variable that is gone or whose type
changed starts from its default, since an old value could not be read as the new type.

Values are copied with their expiry (absolute, on the same clock), so a ttl keeps running.
"""

from __future__ import annotations

from plugins.secl import VariableStore


def carry_variables(old: VariableStore, new: VariableStore) -> list[str]:
    """Copy the values of every variable ``new`` declares with ``old``'s type into ``new``;
    returns the names carried. Call in the thread that uses the stores (the reactor)."""
    return new.carry_from(old)
