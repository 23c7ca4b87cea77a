"""Read a declared key from ``DD_*`` environment variables (viper's BindEnv rules)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from host.config import conversions
from host.config.conversions import ConversionError
from host.config.errors import ConfigError
from host.config.schema import KeySpec


def _converter_for(default: Any) -> Callable[[str], Any]:
    if isinstance(default, bool):  # before int: bool is a subclass of int
        return conversions.to_bool
    if isinstance(default, int):
        return conversions.to_int
    if isinstance(default, float):
        return conversions.to_float
    if isinstance(default, list | tuple):
        return conversions.to_list
    if isinstance(default, Mapping):
        return conversions.to_dict
    return str


def read_env_value(spec: KeySpec, environ: Mapping[str, str]) -> tuple[str, Any] | None:
    """The first of ``spec.env_vars`` that is set, as ``(name, converted value)``, or None.

    An empty variable counts as unset, as in viper (``DD_API_KEY=`` in a container spec does
    not blank the key). A value that does not convert to the default's type is a ConfigError
    naming the variable.
    """
    for name in spec.env_vars:
        raw = environ.get(name)
        if not raw:
            continue
        try:
            return name, _converter_for(spec.default)(raw)
        except ConversionError as error:
            raise ConfigError(f"{name} (environment): {spec.key}: {error}") from None
    return None
