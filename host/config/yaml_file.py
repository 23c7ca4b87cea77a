"""Read one YAML config file, remembering the line of every key so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from host.config.conversions import kind_of
from host.config.errors import ConfigError

_MAP_TAG = "tag:yaml.org,2002:map"


@dataclass(frozen=True)
class ParsedFile:
    """The contents of one config file."""

    path: str
    """The path as the caller gave it; messages show it this way."""

    values: dict[str, Any]
    """The top-level mapping."""

    lines: dict[str, int] = field(default_factory=dict)
    """1-based line of each dotted key: its value's line for a scalar, its own otherwise."""


def read_yaml_file(path: str) -> ParsedFile:
    """Parse the file at ``path``.

    ``OSError`` from opening or reading it propagates, so each caller can word "missing" and
    "permission denied" its own way; bad contents raise ``ConfigError`` naming file and line.
    """
    with open(path, "rb") as stream:
        content = stream.read()
    return parse_yaml(path, content)


def parse_yaml(path: str, content: bytes | str) -> ParsedFile:
    """Parse YAML ``content`` read from ``path`` (used only in messages)."""
    loader: yaml.SafeLoader | None = None
    try:
        # Creating the loader already decodes the start of the stream and may fail.
        loader = yaml.SafeLoader(content)
        root = loader.get_single_node()
        if root is None:
            return ParsedFile(path, {})
        builder = _TreeBuilder(path, loader)
        if isinstance(root, yaml.MappingNode) and root.tag == _MAP_TAG:
            return ParsedFile(path, builder.mapping(root, "", frozenset()), builder.lines)
        value = builder.construct(root)
        if value is None:  # a file holding only "~" or "null" is as good as empty
            return ParsedFile(path, {})
        raise ConfigError(
            f"{path}:{root.start_mark.line + 1}: the top level must be a mapping of keys, "
            f"got {kind_of(value)}"
        )
    except yaml.MarkedYAMLError as error:
        raise ConfigError(_describe_marked(path, error)) from None
    except yaml.reader.ReaderError as error:
        # Undecodable bytes or characters YAML forbids; no line is known, only an offset.
        code = error.character if isinstance(error.character, int) else ord(error.character)
        raise ConfigError(
            f"{path}: invalid YAML: unacceptable character #x{code:04x}: {error.reason} "
            f"(at character {error.position})"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    except RecursionError:
        # PyYAML composes recursively; thousands of nested "[" exhaust the stack.
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def _describe_marked(path: str, error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "unreadable YAML"
    if problem.startswith("but ") and error.context:
        # "but found another document" only makes sense after its context.
        problem = f"{error.context}, {problem}"
    if mark is None:
        return f"{path}: invalid YAML: {problem}"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}"


class _TreeBuilder:
    """Walks the composed node tree so each key's mark is still known when it is stored."""

    def __init__(self, path: str, loader: yaml.SafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.lines: dict[str, int] = {}

    def mapping(
        self, node: yaml.MappingNode, prefix: str, enclosing: frozenset[int]
    ) -> dict[str, Any]:
        if id(node) in enclosing:
            raise ConfigError(
                f"{self.path}:{node.start_mark.line + 1}: a mapping may not contain itself "
                "through an alias"
            )
        # Resolve "<<: *anchor" merge keys the way SafeLoader would.
        self.loader.flatten_mapping(node)
        inner = enclosing | {id(node)}
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    f"{self.path}:{key_node.start_mark.line + 1}: keys must be plain names, "
                    "not lists or mappings"
                )
            # The key's text as written: "yes:" or "1:" is a key named "yes" or "1", as in Go.
            name = str(key_node.value)
            dotted = prefix + name
            if isinstance(value_node, yaml.MappingNode) and value_node.tag == _MAP_TAG:
                result[name] = self.mapping(value_node, dotted + ".", inner)
                self.lines[dotted] = key_node.start_mark.line + 1
            else:
                result[name] = self.construct(value_node)
                marked = value_node if isinstance(value_node, yaml.ScalarNode) else key_node
                self.lines[dotted] = marked.start_mark.line + 1
        return result

    def construct(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError as error:
            # SafeLoader lets some plain Python errors out, e.g. "2024-13-01" read as a date.
            mark = node.start_mark
            raise ConfigError(
                f"{self.path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {error}"
            ) from None
