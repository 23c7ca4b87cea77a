"""Finding checks the way the Datadog Agent does.

Configurations: ``<confd_path>/<name>.d/*.yaml`` and ``<confd_path>/<name>.yaml`` (empty
files ignored; ``conf.yaml.default`` only when nothing else configures the check). Code: the
module ``datadog_checks.<name>``, then ``<name>`` with every ``additional_checksd`` directory
on ``sys.path`` — rtloader's order, so an installed wheel wins over ``checks.d``. When both
imports fail, both errors are kept. The class is the first leaf subclass of ``AgentCheck`` in
``dir(module)``; it is built with keyword arguments and, failing that, again with
``agentConfig`` (the deprecated constructor), as the Agent's Go side does.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from twisted.logger import Logger

from host.scheduler import fnv1a64

log = Logger(namespace="checks")

DEFAULT_INTERVAL = 15.0
SKIP_INSTANCE_PREFIX = "The integration refused to load the check configuration"
CONFIG_SUFFIXES = (".yaml", ".yml")


class ConfigFileError(Exception):
    """A configuration file that cannot be used; the message names the file and line."""


@dataclass
class InstanceConfig:
    name: str
    init_config: dict[str, Any]
    instance: dict[str, Any]
    source: str
    """``file:<path>`` as ``Configuration Source`` shows it."""
    line: int | None = None

    @property
    def check_id(self) -> str:
        """``<name>:<16 hex digits>``: stable for the same name, instance and init_config
        (FNV-1a like the Go agent's digest of instance configurations)."""
        digest = yaml.safe_dump(
            {"instance": self.instance, "init_config": self.init_config}, sort_keys=True
        )
        return f"{self.name}:{fnv1a64((self.name + digest).encode()):016x}"

    def interval(self) -> float:
        """``min_collection_interval`` of the instance if positive, else 15 s
        (``init_config.min_collection_interval`` is ignored, as by the Agent for Python)."""
        value = self.instance.get("min_collection_interval")
        if value is None:
            return DEFAULT_INTERVAL
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            where = f"{self.source[5:]}:{self.line}" if self.line else self.source[5:]
            raise ConfigFileError(
                f"{where}: min_collection_interval must be a number of seconds, got {value!r}"
            )
        return float(value) if value > 0 else DEFAULT_INTERVAL


@dataclass
class CheckConfigs:
    """Everything found under ``confd_path``."""

    instances: dict[str, list[InstanceConfig]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    """Config files that could not be used, by check name."""


def _line_of(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _instances_node(root: yaml.Node | None) -> yaml.Node | None:
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "instances":
                found: yaml.Node = value
                return found
    return None


def parse_config_file(name: str, path: str) -> list[InstanceConfig]:
    """The instances of one file; :class:`ConfigFileError` names ``path:line`` when bad."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot read: {error.strerror}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise ConfigFileError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return []  # an empty file is ignored, as by the Agent
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{path}:{_line_of(root)}: expected a mapping with 'init_config' and 'instances'"
        )
    init_config = data.get("init_config")
    if init_config is None:
        init_config = {}
    if not isinstance(init_config, dict):
        raise ConfigFileError(f"{path}: 'init_config' is not a dict")
    instances = data.get("instances")
    nodes = _instances_node(root)
    if not isinstance(instances, list) or not instances:
        where = f"{path}:{_line_of(nodes)}" if nodes is not None else path
        raise ConfigFileError(f"{where}: 'instances' must be a non-empty list of mappings")
    item_nodes = nodes.value if isinstance(nodes, yaml.SequenceNode) else []
    result = []
    for index, item in enumerate(instances):
        line = _line_of(item_nodes[index]) if index < len(item_nodes) else None
        instance = {} if item is None else item
        if not isinstance(instance, dict):
            raise ConfigFileError(f"{path}:{line}: instance {index + 1} is not a dict")
        result.append(InstanceConfig(name, init_config, instance, f"file:{path}", line))
    return result


def _config_files(confd: str) -> dict[str, list[str]]:
    """Config files by check name, in a stable order."""
    found: dict[str, list[str]] = {}
    defaults: dict[str, list[str]] = {}
    try:
        entries = sorted(os.listdir(confd))
    except FileNotFoundError:
        return {}
    for entry in entries:
        path = os.path.join(confd, entry)
        if entry.endswith(".d") and os.path.isdir(path):
            name = entry[:-2]
            for inner in sorted(os.listdir(path)):
                inner_path = os.path.join(path, inner)
                if inner.startswith("auto_conf.") or not os.path.isfile(inner_path):
                    continue  # auto_conf.yaml needs autodiscovery, which this host lacks
                if inner.endswith(CONFIG_SUFFIXES):
                    found.setdefault(name, []).append(inner_path)
                elif inner.endswith(tuple(s + ".default" for s in CONFIG_SUFFIXES)):
                    defaults.setdefault(name, []).append(inner_path)
        elif entry.endswith(CONFIG_SUFFIXES) and os.path.isfile(path):
            found.setdefault(entry.rsplit(".", 1)[0], []).append(path)
    for name, paths in defaults.items():
        found.setdefault(name, paths)
    return found


def discover(confd: str, only: str | None = None) -> CheckConfigs:
    configs = CheckConfigs()
    for name, paths in _config_files(confd).items():
        if only is not None and name != only:
            continue
        for path in paths:
            try:
                configs.instances.setdefault(name, []).extend(parse_config_file(name, path))
            except ConfigFileError as error:
                configs.errors.setdefault(name, []).append(str(error))
        if not configs.instances.get(name):
            configs.instances.pop(name, None)
    return configs


# --- code ------------------------------------------------------------------------------------


def python_error() -> str:
    """rtloader's ``_fetchPythonError``: the formatted traceback of the current exception."""
    kind, value, tb = sys.exc_info()
    if tb is not None:
        return "".join(traceback.format_exception(kind, value, tb))
    if value is not None:
        return str(value)
    return str(kind) if kind is not None else "unknown error"


@dataclass
class LoadedClass:
    klass: type
    module: str
    version: str


class CheckLoadError(Exception):
    """Both lookups failed; ``errors`` holds one line per loader attempt."""

    def __init__(self, name: str, errors: list[str]) -> None:
        super().__init__(f"could not load {name}: " + "; ".join(errors))
        self.name = name
        self.errors = errors


def add_checksd_paths(directories: list[str]) -> None:
    """rtloader appends the extra check directories to ``sys.path``."""
    for directory in directories:
        if directory and directory not in sys.path:
            sys.path.append(directory)
    importlib.invalidate_caches()


def find_subclass(module: Any, base: type) -> type | None:
    for attribute in dir(module):
        candidate = getattr(module, attribute)
        if (
            isinstance(candidate, type)
            and candidate is not base
            and issubclass(candidate, base)
            and not candidate.__subclasses__()
        ):
            return candidate
    return None


def load_class(name: str, base: type) -> LoadedClass:
    errors = []
    for module_name in (f"datadog_checks.{name}", name):
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            errors.append(f"unable to import module '{module_name}': {_short(error)}")
            continue
        klass = find_subclass(module, base)
        if klass is None:
            errors.append(
                f"unable to find a subclass of the base check in module '{module_name}': "
                "cannot find a subclass"
            )
            continue
        version = getattr(module, "__version__", None)
        return LoadedClass(
            klass, module_name, version if isinstance(version, str) else "unversioned"
        )
    raise CheckLoadError(name, errors)


def _short(error: BaseException) -> str:
    if isinstance(error, SyntaxError):
        return f"{error.msg} ({error.filename}, line {error.lineno})"
    return str(error) or type(error).__name__


class SkipInstance(Exception):
    """The check refused this instance on purpose (``SkipInstanceError``)."""


def instantiate(
    loaded: LoadedClass, config: InstanceConfig, agent_config: Mapping[str, Any]
) -> Any:
    """Build the check object like rtloader: keywords first, then the ``agentConfig`` form."""
    kwargs = {
        "name": config.name,
        "init_config": config.init_config,
        "instances": (config.instance,),
    }
    try:
        check = loaded.klass(**kwargs)
    except Exception:
        new_error = python_error()
    else:
        check.check_id = config.check_id
        return check
    if SKIP_INSTANCE_PREFIX in new_error:
        raise SkipInstance(new_error.strip().splitlines()[-1])
    log.warn(
        "could not get a '{name}' check instance with the new api: {error}",
        name=config.name,
        error=new_error,
    )
    log.warn(
        "trying to instantiate the check with the old api, passing agentConfig to the constructor"
    )
    try:
        check = loaded.klass(agentConfig=dict(agent_config), **kwargs)
    except Exception:
        old_error = python_error()
        raise RuntimeError(
            f"could not invoke '{config.name}' python check constructor. New constructor API "
            f"returned:\n{new_error}Deprecated constructor API returned:\n{old_error}"
        ) from None
    log.warn(
        "passing `agentConfig` to the constructor is deprecated, please use the `get_config` "
        "function from the 'datadog_agent' package ({name}).",
        name=config.name,
    )
    check.check_id = config.check_id
    return check
