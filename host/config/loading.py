"""Build a ``Config`` from the agent's config files and the system-probe config file."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from host.config.config import Config
from host.config.errors import ConfigError
from host.config.yaml_file import ParsedFile, read_yaml_file

SYSPROBE_FILE_NAME = "system-probe.yaml"

_SAME_USER_HINT = "try running the command under the same user as the security agent"


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def load_config(
    paths: Sequence[str], *, env: Mapping[str, str] | None = None, required: bool = True
) -> Config:
    """Load and deep-merge ``paths`` in order, a later file overriding an earlier one.

    The agent passes ``datadog.yaml`` then ``security-agent.yaml``. With ``required`` a missing
    file is an error (paths the operator named); without it missing files are skipped (the
    built-in default paths). ``env`` defaults to ``os.environ``. Every problem is a one-line
    ``ConfigError`` naming the file, and the line when the contents are at fault.
    """
    config = Config(env=env)
    for path in paths:
        parsed = _read_agent_file(path, required=required)
        if parsed is not None:
            config._merge_file(parsed)
    return config


def _read_agent_file(path: str, *, required: bool) -> ParsedFile | None:
    try:
        return read_yaml_file(path)
    except (FileNotFoundError, NotADirectoryError):
        if required:
            raise ConfigError(f"{path}: no such config file") from None
        return None
    except PermissionError as error:
        raise ConfigError(
            f"cannot access the config file {path} ({_reason(error)}); {_SAME_USER_HINT}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({_reason(error)})") from None


def sysprobe_config_file(path: str | None, default_dir: str = "/etc/security-agent") -> str:
    """The system-probe config file ``path`` designates.

    None or "" means ``<default_dir>/system-probe.yaml``; a path ending in ``.yaml`` is the file
    itself; anything else is a directory holding ``system-probe.yaml``.
    """
    if not path:
        return os.path.join(default_dir, SYSPROBE_FILE_NAME)
    if path.endswith(".yaml"):
        return path
    return os.path.join(path, SYSPROBE_FILE_NAME)


def load_sysprobe_config(
    path: str | None,
    *,
    env: Mapping[str, str] | None = None,
    default_dir: str = "/etc/security-agent",
) -> Config:
    """Load the system-probe config (runtime security reads its policies settings there).

    ``path`` is resolved by ``sysprobe_config_file``. A missing file is not an error: the
    result is an empty configuration (plus the environment, once keys are declared).
    """
    file = sysprobe_config_file(path, default_dir)
    config = Config(env=env)
    try:
        parsed = read_yaml_file(file)
    except (FileNotFoundError, NotADirectoryError):
        return config
    except PermissionError as error:
        raise ConfigError(
            f"cannot access the system-probe config file ({file}: {_reason(error)}); "
            f"{_SAME_USER_HINT}"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"unable to load system-probe config file: {file}: {_reason(error)}"
        ) from None
    except ConfigError as error:
        raise ConfigError(f"unable to load system-probe config file: {error}") from None
    config._merge_file(parsed)
    return config
