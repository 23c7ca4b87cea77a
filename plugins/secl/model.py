"""Field models: which fields an expression may name, their types and where they live in an
event.

An event is a plain nested dict whose keys mirror the field names, plus ``"type"``::

    {"type": "open", "timestamp": 1.0,
     "open": {"file": {"path": "/etc/shadow", "name": "shadow", "mode": 0o640}, "flags": 0},
     "process": {"pid": 10, "comm": "cat", "file": {"path": "/usr/bin/cat"},
                 "argv": ["cat", "/etc/shadow"], "ancestors": [{...process dict...}, ...]}}

``open.file.path`` reads ``event["open"]["file"]["path"]``; a missing key (or ``None``) reads
as the type's zero value (``""``, ``0``, ``False``, an empty list). ``process.parent.*`` reads
``process.ancestors[0]``; ``process.ancestors.*`` iterates the ancestors list (any-element
semantics, see :mod:`plugins.secl.checker`).

Two models ship: :data:`RUNTIME_MODEL` (kernel events of the runtime security sources) and
:data:`FILTER_MODEL` (facts about the host, for compliance rule ``filters``). A caller may build
its own :class:`Model` from :class:`FieldSpec` entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from plugins.secl.constants import kernel_constants

#: Scalar kinds a field or value can have. ``time`` is an epoch timestamp in seconds that
#: compares against durations as an age (``process.created_at > 5m``); ``duration`` is seconds.
KINDS = frozenset({"string", "int", "bool", "ip", "time", "duration"})

ZERO: dict[str, Any] = {
    "string": "",
    "int": 0,
    "bool": False,
    "ip": "",
    "time": 0.0,
    "duration": 0.0,
}

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldSpec:
    """One field.

    ``path`` is where the raw value lives (inside each element of ``iterator`` when that is
    set); ``derive`` turns the raw value into the field value (``args_flags`` from ``argv``);
    ``is_list`` marks list-valued fields (``exec.argv``); ``event_type`` is ``None`` for fields
    present on every event (``process.*``); ``is_path`` makes ``*`` in patterns stop at ``/``.
    """

    name: str
    kind: str
    path: Path
    event_type: str | None = None
    is_list: bool = False
    iterator: Path | None = None
    derive: Callable[[Any], Any] | None = None
    is_path: bool = False

    @property
    def zero(self) -> Any:
        return () if self.is_list else ZERO[self.kind]


@dataclass(frozen=True)
class Model:
    """The fields and named constants one family of events offers."""

    name: str
    fields: Mapping[str, FieldSpec]
    constants: Mapping[str, tuple[Any, str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, name: str, fields: Iterable[FieldSpec], constants: Mapping[str, int] | None = None
    ) -> Model:
        return cls(
            name,
            {f.name: f for f in fields},
            {k: (v, "int") for k, v in (constants or {}).items()},
        )

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(f.event_type for f in self.fields.values() if f.event_type)


# -- derived values ---------------------------------------------------------------------------


def args_flags(argv: Any) -> tuple[str, ...]:
    """Flags of a command line, without the program name: ``-ln`` gives ``l`` and ``n``,
    ``--verbose`` gives ``verbose``; ``--name=value`` is an option, not a flag. ``-T 8`` gives
    flag ``T`` as well as option ``T=8``: whether ``8`` is a value only the program knows."""
    out: list[str] = []
    for arg in _args(argv):
        if arg.startswith("--"):
            if len(arg) > 2 and "=" not in arg:
                out.append(arg[2:])
        elif arg.startswith("-") and len(arg) > 1 and "=" not in arg and arg[1:].isalnum():
            out.extend(arg[1:])
    return tuple(out)


def args_options(argv: Any) -> tuple[str, ...]:
    """Options of a command line as ``name=value``: ``--width=8``, ``-T=8``, and ``-T 8`` /
    ``--width 8`` when the next argument does not start with ``-``."""
    args = _args(argv)
    out: list[str] = []
    for i, arg in enumerate(args):
        if not arg.startswith("-") or arg in ("-", "--"):
            continue
        name = arg.lstrip("-")
        if "=" in name:
            out.append(name)
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            out.append(f"{name}={args[i + 1]}")
    return tuple(out)


def _args(argv: Any) -> list[str]:
    if not isinstance(argv, list | tuple):
        return []
    return [a for a in argv[1:] if isinstance(a, str)]


def _argv0(argv: Any) -> str:
    if isinstance(argv, list | tuple) and argv and isinstance(argv[0], str):
        return argv[0]
    return ""


def _rights(mode: Any) -> int:
    return mode & 0o7777 if isinstance(mode, int) else 0


# -- building blocks --------------------------------------------------------------------------

# (suffix, kind, raw path, is_list, derive)
_FILE_FIELDS: list[tuple[str, str, Path, bool, Callable[[Any], Any] | None]] = [
    ("path", "string", ("path",), False, None),
    ("name", "string", ("name",), False, None),
    ("mode", "int", ("mode",), False, None),
    ("rights", "int", ("mode",), False, _rights),
    ("uid", "int", ("uid",), False, None),
    ("gid", "int", ("gid",), False, None),
    ("user", "string", ("user",), False, None),
    ("group", "string", ("group",), False, None),
    ("inode", "int", ("inode",), False, None),
    ("filesystem", "string", ("filesystem",), False, None),
]

_PROCESS_FIELDS: list[tuple[str, str, Path, bool, Callable[[Any], Any] | None]] = [
    ("pid", "int", ("pid",), False, None),
    ("ppid", "int", ("ppid",), False, None),
    ("tid", "int", ("tid",), False, None),
    ("uid", "int", ("uid",), False, None),
    ("gid", "int", ("gid",), False, None),
    ("euid", "int", ("euid",), False, None),
    ("egid", "int", ("egid",), False, None),
    ("user", "string", ("user",), False, None),
    ("group", "string", ("group",), False, None),
    ("euser", "string", ("euser",), False, None),
    ("egroup", "string", ("egroup",), False, None),
    ("comm", "string", ("comm",), False, None),
    ("tty_name", "string", ("tty_name",), False, None),
    ("cwd", "string", ("cwd",), False, None),
    ("argv", "string", ("argv",), True, None),
    ("argv0", "string", ("argv",), False, _argv0),
    ("args", "string", ("args",), False, None),
    ("args_flags", "string", ("argv",), True, args_flags),
    ("args_options", "string", ("argv",), True, args_options),
    ("envs", "string", ("envs",), True, None),
    ("container.id", "string", ("container", "id"), False, None),
    ("created_at", "time", ("created_at",), False, None),
    ("is_thread", "bool", ("is_thread",), False, None),
    ("cap_effective", "int", ("cap_effective",), False, None),
] + [("file." + s, k, ("file", *p), lst, d) for s, k, p, lst, d in _FILE_FIELDS]


def _group(
    prefix: str,
    base: Path,
    table: list[tuple[str, str, Path, bool, Callable[[Any], Any] | None]],
    event_type: str | None,
    iterator: Path | None = None,
) -> list[FieldSpec]:
    return [
        FieldSpec(
            name=f"{prefix}.{suffix}",
            kind=kind,
            path=path if iterator else (*base, *path),
            event_type=event_type,
            is_list=is_list,
            iterator=iterator,
            derive=derive,
            is_path=suffix.endswith("path"),
        )
        for suffix, kind, path, is_list, derive in table
    ]


def _scalars(event_type: str, *entries: tuple[str, str]) -> list[FieldSpec]:
    """Plain fields ``<event_type>.<name>`` read from ``event[event_type][...name parts]``."""
    return [
        FieldSpec(
            name=f"{event_type}.{name}",
            kind=kind,
            path=(event_type, *name.split(".")),
            event_type=event_type,
            is_path=name.endswith("path"),
        )
        for name, kind in entries
    ]


def _file_event(
    event_type: str, *extra: tuple[str, str], destination: bool = False
) -> list[FieldSpec]:
    fields = _group(f"{event_type}.file", (event_type, "file"), _FILE_FIELDS, event_type)
    if destination:
        fields += _group(
            f"{event_type}.file.destination",
            (event_type, "file", "destination"),
            _FILE_FIELDS,
            event_type,
        )
    return fields + _scalars(event_type, ("retval", "int"), *extra)


def _runtime_fields() -> list[FieldSpec]:
    fields: list[FieldSpec] = []
    # Context present on every event.
    fields += _group("process", ("process",), _PROCESS_FIELDS, None)
    fields += _group("process.parent", ("process", "ancestors", 0), _PROCESS_FIELDS, None)
    fields += _group(
        "process.ancestors", (), _PROCESS_FIELDS, None, iterator=("process", "ancestors")
    )
    fields.append(FieldSpec("container.id", "string", ("process", "container", "id")))
    # Process lifecycle: the event's own section is the new/forked/exiting process.
    for et in ("exec", "fork", "exit"):
        fields += _group(et, (et,), _PROCESS_FIELDS, et)
    fields += _scalars("exit", ("code", "int"), ("cause", "string"))
    # Files.
    fields += _file_event("open", ("flags", "int"), ("mode", "int"))
    fields += _file_event("chmod")
    fields += [
        FieldSpec("chmod.file.destination.mode", "int", ("chmod", "file", "destination", "mode"),
                  "chmod"),
        FieldSpec("chmod.file.destination.rights", "int",
                  ("chmod", "file", "destination", "mode"), "chmod", derive=_rights),
    ]  # fmt: skip
    fields += _file_event("chown")
    fields += _scalars(
        "chown",
        ("file.destination.uid", "int"),
        ("file.destination.gid", "int"),
        ("file.destination.user", "string"),
        ("file.destination.group", "string"),
    )
    fields += _file_event("rename", destination=True)
    fields += _file_event("unlink", ("flags", "int"))
    fields += _file_event("link", destination=True)
    fields += _file_event("utimes")
    fields += _file_event("mkdir", ("file.destination.mode", "int"))
    fields += _file_event("rmdir")
    # Credentials.
    fields += _scalars(
        "setuid", ("uid", "int"), ("user", "string"), ("euid", "int"), ("euser", "string"),
        ("fsuid", "int"), ("fsuser", "string"), ("retval", "int"),
    )  # fmt: skip
    fields += _scalars(
        "setgid", ("gid", "int"), ("group", "string"), ("egid", "int"), ("egroup", "string"),
        ("fsgid", "int"), ("fsgroup", "string"), ("retval", "int"),
    )  # fmt: skip
    # Other syscalls.
    fields += _scalars("ptrace", ("request", "int"), ("retval", "int"))
    fields += _group("ptrace.tracee", ("ptrace", "tracee"), _PROCESS_FIELDS, "ptrace")
    fields += _group("load_module.file", ("load_module", "file"), _FILE_FIELDS, "load_module")
    fields += _scalars(
        "load_module", ("name", "string"), ("args", "string"), ("loaded_from_memory", "bool"),
        ("retval", "int"),
    )  # fmt: skip
    for et in ("connect", "bind"):
        fields += _scalars(
            et, ("addr.ip", "ip"), ("addr.port", "int"), ("addr.family", "int"),
            ("addr.is_public", "bool"), ("protocol", "int"), ("retval", "int"),
        )  # fmt: skip
    fields += _scalars(
        "mount", ("mountpoint.path", "string"), ("source.path", "string"),
        ("fs_type", "string"), ("retval", "int"),
    )  # fmt: skip
    fields += _scalars("signal", ("type", "int"), ("pid", "int"), ("retval", "int"))
    fields += _group("signal.target", ("signal", "target"), _PROCESS_FIELDS, "signal")
    return fields


def _filter_fields() -> list[FieldSpec]:
    return [
        FieldSpec("os", "string", ("os", "name")),
        FieldSpec("os.id", "string", ("os", "id")),
        FieldSpec("os.version_id", "string", ("os", "version_id")),
        FieldSpec("os.platform_id", "string", ("os", "platform_id")),
        FieldSpec("os.arch", "string", ("os", "arch")),
        FieldSpec("os.kernel", "string", ("os", "kernel")),
        FieldSpec("os.is_amazon_linux", "bool", ("os", "id"), derive=lambda v: v == "amzn"),
        FieldSpec("kernel.version.major", "int", ("kernel", "major")),
        FieldSpec("kernel.version.minor", "int", ("kernel", "minor")),
        FieldSpec("hostname", "string", ("hostname",)),
        FieldSpec("envs", "string", ("envs",), is_list=True),
    ]


#: Kernel events fed by the runtime security sources, with the kernel constant tables.
RUNTIME_MODEL = Model.build("runtime", _runtime_fields(), kernel_constants())

#: Host facts for compliance ``filters``. The event is
#: ``{"os": {"name": "linux", "id": "debian", "version_id": "12", "platform_id": "",
#: "arch": "x86_64", "kernel": "6.1.0-18-amd64"}, "kernel": {"major": 6, "minor": 1},
#: "hostname": "...", "envs": [...]}``; every field is common (no event type).
FILTER_MODEL = Model.build("filter", _filter_fields())
