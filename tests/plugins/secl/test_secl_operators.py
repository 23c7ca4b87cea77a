"""Every operator and type, table-driven: each expression is compiled alone and evaluated on a
fixed event by the indexed path, the brute-force path and the reference tree walker."""

from __future__ import annotations

import copy

import pytest
from secl_events import CONNECT_EVENT, OPEN_EVENT

from plugins.secl import MacroDefinition, RuleDefinition, RuleSet, VariableStore

OPEN_CASES = [
    # strings
    ('open.file.path == "/etc/shadow"', True),
    ('open.file.path == "/etc/passwd"', False),
    ('open.file.path != "/etc/passwd"', True),
    ('"/etc/shadow" == open.file.path', True),
    ('open.file.name == "shadow" && process.comm == "cat"', True),
    ('process.tty_name != ""', True),
    ('process.cwd == ""', True),  # missing field reads as the zero value
    # ints
    ("open.file.gid == 42", True),
    ("open.file.gid != 42", False),
    ("open.file.gid < 43", True),
    ("open.file.gid <= 42", True),
    ("open.file.gid > 42", False),
    ("open.file.gid >= 42", True),
    ("43 > open.file.gid", True),
    ("open.retval == -EACCES", True),
    ("open.file.inode == 0x7", True),
    ("open.file.inode == 0o7", True),
    # bools
    ("process.is_thread == false", True),
    ("process.is_thread", False),
    ("!process.is_thread", True),
    ("not process.is_thread", True),
    ("process.is_thread != true", True),
    # logic, precedence and parentheses
    ("open.file.gid == 1 || open.file.gid == 42", True),
    ("open.file.gid == 1 or open.file.gid == 42 and process.uid == 5", False),
    ("(open.file.gid == 1 or open.file.gid == 42) and process.uid == 0", True),
    ('open.file.gid == 42 && !(process.comm == "cat")', False),
    ("not (open.file.gid == 1) and not open.file.gid == 2", True),
    ("open.file.gid == 1 || open.file.gid == 2 || open.file.gid == 42", True),
    # bit operations and constants
    ("open.flags & O_CREAT > 0", True),
    ("open.flags & O_TRUNC > 0", False),
    ("open.flags & (O_CREAT | O_TRUNC) == O_CREAT", True),
    ("open.flags & O_RDWR == O_RDWR", True),
    ("open.flags | O_TRUNC == 0o1102", True),
    ("open.flags ^ O_CREAT == O_RDWR", True),
    ("^open.flags & O_CREAT == 0", True),
    ("open.file.mode & S_IXUSR == 0", True),
    ("open.file.mode & (S_IRUSR|S_IWUSR|S_IRGRP) == 0o640", True),
    ("open.file.rights == 0o640", True),
    ("open.file.mode & S_IFMT == S_IFREG", True),
    # membership
    ('open.file.path in ["/etc/passwd", "/etc/shadow"]', True),
    ('open.file.path not in ["/etc/passwd", "/etc/shadow"]', False),
    ('open.file.path in [~"/etc/sha*", "/x"]', True),
    ('open.file.path in [r"^/etc/s.*w$"]', True),
    ("open.file.path in []", False),
    ("open.file.path not in []", True),
    ("open.file.gid in [1, 42]", True),
    ("open.file.gid not in [1, 2, 3]", True),
    ("open.flags in [O_RDWR|O_CREAT, O_RDONLY]", True),
    # patterns and regexes
    ('open.file.path =~ "/etc/*"', True),
    ('open.file.path =~ "/*"', False),  # * stays within one level on paths
    ('open.file.path =~ "/**"', True),
    ('open.file.path =~ "/etc/**"', True),
    ('open.file.path =~ "/usr/**"', False),
    ('open.file.path !~ "/etc/*"', False),
    ('open.file.path == ~"/etc/sh*"', True),
    ('open.file.path != ~"/etc/sh*"', False),
    ('~"/etc/*" == open.file.path', True),
    ('process.comm =~ "c*"', True),
    ('process.args =~ "cat *"', True),  # * crosses / on non-path fields
    ('process.args =~ "*/etc/shadow"', True),
    ('open.file.path =~ r"shad"', True),  # regexes search
    ('open.file.path =~ r"^shad"', False),
    ('r"^/etc/" == open.file.path', True),
    ('open.file.path !~ r"^/usr"', True),
    ('process.comm == ~"ca?"', False),  # only * is special
    # lists, ancestors, args helpers
    ('process.argv == "--verbose"', True),
    ('process.argv in ["-T", "-x"]', True),
    ('process.argv not in ["-x"]', True),
    ('process.argv =~ "--w*"', True),
    ("process.argv.length == 7", True),
    ('process.argv0 == "cat"', True),
    ('process.args_flags == "l"', True),
    ('process.args_flags == "n"', True),
    ('process.args_flags == "verbose"', True),
    ('process.args_flags == "width"', False),
    ('process.args_options == "width=8"', True),
    ('process.args_options in ["T=8"]', True),
    ('process.envs in ["HOME"]', True),
    ('process.ancestors.file.name == "sshd"', True),
    ('process.ancestors.file.name == "nginx"', False),
    ('process.ancestors.file.name != "nginx"', True),
    ('process.ancestors.file.name != "sshd"', False),  # negation = no ancestor matches
    ('process.ancestors.file.path not in ["/usr/bin/apt", "/usr/bin/dpkg"]', True),
    ('process.ancestors.file.path in [~"/usr/sbin/*"]', True),
    ('process.ancestors.file.path =~ "/sbin/*"', True),
    ("process.ancestors.uid == 1000", True),
    ("process.ancestors.uid > 1000", False),
    ('process.ancestors.argv == "-D"', True),
    ('process.ancestors.args_flags == "i"', True),
    ("process.ancestors.file.name.length == 4", True),
    ('process.parent.file.name == "bash"', True),
    ("process.parent.uid == 1000", True),
    # .length on strings
    ("open.file.path.length == 11", True),
    ("open.file.name.length > 10", False),
    # durations and times (age = event timestamp - value)
    ("process.created_at > 5s", True),
    ("process.created_at < 5s", False),
    ("process.created_at < 1m", True),
    ("process.created_at >= 10s", True),
    ("process.created_at > 10001ms", False),
    # string interpolation with fields
    ('open.file.path == "/etc/${open.file.name}"', True),
    ('"/proc/${process.pid}/maps" == "/proc/10/maps"', True),
    # container
    ('container.id == "abc123"', True),
    ('process.container.id != ""', True),
    # comments and multiple lines
    ('open.file.path == "/etc/shadow" # the shadow file\n  && process.comm == "cat"', True),
]

CONNECT_CASES = [
    ("connect.addr.ip == 10.1.2.3", True),
    ("connect.addr.ip == 10.1.2.4", False),
    ("connect.addr.ip in 10.0.0.0/8", True),
    ("connect.addr.ip not in 10.0.0.0/8", False),
    ("connect.addr.ip in [192.168.0.0/16, 10.1.0.0/16]", True),
    ("connect.addr.ip in [::1, fe80::/10]", False),
    ("connect.addr.ip allin 10.0.0.0/8", True),
    ("connect.addr.ip == 10.0.0.0/8", True),
    ("connect.addr.family == AF_INET", True),
    ("connect.addr.port in [80, 443]", True),
    ("connect.addr.is_public", False),
    ("process.is_thread", True),
    ("process.created_at > 10m", False),
    ("process.created_at > 9m", True),
    ('process.ancestors.file.name == ""', False),  # no ancestors: nothing matches
    ('process.ancestors.file.name != "x"', True),
]


def _check(expression, event, expected, macros=(), variables=None):
    rules = RuleSet.compile(
        [RuleDefinition("r", expression)], macros, variables=variables, clock=lambda: 0.0
    )
    assert rules.errors == {}
    expected_ids = ["r"] if expected else []
    assert rules.evaluate(event) == expected_ids
    assert rules.evaluate_all(event) == expected_ids
    assert rules.evaluate_every_rule(event) == expected_ids
    assert rules.reference_evaluate(event) == expected_ids
    assert rules.eval_errors == 0


@pytest.mark.parametrize(("expression", "expected"), OPEN_CASES)
def test_open_event(expression, expected):
    _check(expression, copy.deepcopy(OPEN_EVENT), expected)


@pytest.mark.parametrize(("expression", "expected"), CONNECT_CASES)
def test_connect_event(expression, expected):
    _check(expression, copy.deepcopy(CONNECT_EVENT), expected)


def test_ipv6_addresses():
    event = copy.deepcopy(CONNECT_EVENT)
    event["connect"]["addr"]["ip"] = "fe80::1"
    _check("connect.addr.ip in fe80::/10", event, True)
    _check("connect.addr.ip == ::1", event, False)
    _check("connect.addr.ip in [10.0.0.0/8]", event, False)


@pytest.fixture
def open_event():
    return copy.deepcopy(OPEN_EVENT)


@pytest.fixture
def connect_event():
    return copy.deepcopy(CONNECT_EVENT)


def test_rule_of_another_type_does_not_match(open_event):
    rules = RuleSet.compile([RuleDefinition("c", "connect.addr.port != 1")])
    assert rules.evaluate(open_event) == []
    assert rules.evaluate_all(open_event) == []


def test_common_field_rule_applies_to_every_type(open_event, connect_event):
    rules = RuleSet.compile([RuleDefinition("any", 'process.comm in ["cat", "curl"]')])
    assert rules.rules["any"].event_type is None
    assert rules.evaluate(open_event) == ["any"]
    assert rules.evaluate(connect_event) == ["any"]
    assert rules.evaluate({"type": "unknown", "process": {"comm": "cat"}}) == ["any"]


MACRO_CASES = [
    ("open.file.path in SENSITIVE", True),
    ("open.file.path not in SENSITIVE", False),
    ("open.flags & (WRITE_FLAGS) > 0", True),
    ("open.flags & WRITE_FLAGS > 0", True),
    ("is_shadow && process.comm in TOOLS", True),
    ("shadow_by_tool", True),
    ("!shadow_by_tool", False),
    ("process.ancestors.file.name in SHELLS", True),
    ("process.ancestors.file.name not in SHELLS", False),
    ("open.file.gid in GIDS", True),
]
MACROS = [
    MacroDefinition("SENSITIVE", expression='["/etc/shadow", ~"/etc/sudoers.d/*"]'),
    MacroDefinition("WRITE_FLAGS", expression="O_CREAT|O_TRUNC|O_APPEND|O_RDWR|O_WRONLY"),
    MacroDefinition("is_shadow", expression='open.file.path == "/etc/shadow"'),
    MacroDefinition("TOOLS", values=["cat", "less"]),
    MacroDefinition("shadow_by_tool", expression="is_shadow && process.comm in TOOLS"),
    MacroDefinition("SHELLS", values=["bash", "sh", "zsh"]),
    MacroDefinition("GIDS", values=[42, 43]),
]


@pytest.mark.parametrize(("expression", "expected"), MACRO_CASES)
def test_macros(expression, expected):
    _check(expression, copy.deepcopy(OPEN_EVENT), expected, macros=MACROS)


def test_user_variables(open_event):
    clock = [100.0]
    store = VariableStore(clock=lambda: clock[0])
    store.declare("process.suspicious", "bool")
    store.declare("seen_path", "string")
    store.declare("container.count", "int")
    store.declare("process.paths", "string", is_list=True)
    rules = RuleSet.compile(
        [
            RuleDefinition("flag", '${process.suspicious} && open.file.path == "/etc/shadow"'),
            RuleDefinition("path", 'open.file.path == "${seen_path}"'),
            RuleDefinition("count", "${container.count} >= 2"),
            RuleDefinition("list", '"/etc/shadow" == "${seen_path}"'),
        ],
        variables=store,
    )
    assert rules.errors == {}
    assert rules.evaluate(open_event) == []
    store.set("process.suspicious", True, open_event, ttl=10)
    store.set("seen_path", "/etc/shadow")
    store.set("container.count", 2, open_event)
    assert rules.evaluate(open_event) == ["flag", "path", "count", "list"]
    assert rules.reference_evaluate(open_event) == ["flag", "path", "count", "list"]
    other = copy.deepcopy(open_event)
    other["process"]["pid"] = 11
    other["process"]["container"]["id"] = "other"
    assert rules.evaluate(other) == ["path", "list"]  # process and container scopes
    clock[0] = 110.0  # the ttl ran out
    assert rules.evaluate(open_event) == ["path", "count", "list"]
    store.set("process.paths", "/a", open_event, append=True, size=2)
    store.set("process.paths", "/b", open_event, append=True, size=2)
    store.set("process.paths", "/c", open_event, append=True, size=2)
    assert store.get("process.paths", open_event) == ("/b", "/c")
    store.forget_process(10)
    assert store.get("process.paths", open_event) == ()
