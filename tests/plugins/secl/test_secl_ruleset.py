"""Rule sets: buckets by event type, approver indexes, compliance filters, the parser API."""

from __future__ import annotations

import copy

from secl_events import OPEN_EVENT

from plugins.secl import (
    FILTER_MODEL,
    Approver,
    MacroDefinition,
    RuleDefinition,
    RuleSet,
    compile_expression,
    parse,
)
from plugins.secl.syntax import Binary, Ident, Literal


def _open(path, **process):
    event = copy.deepcopy(OPEN_EVENT)
    event["open"]["file"]["path"] = path
    event["process"].update(process)
    return event


RULES = [
    RuleDefinition("shadow", 'open.file.path == "/etc/shadow"'),
    RuleDefinition("etc_glob", 'open.file.path =~ "/etc/*" && process.comm != "vipw"'),
    RuleDefinition("boot", 'open.file.path in [~"/boot/**", "/vmlinuz"]'),
    RuleDefinition("either", 'open.file.name == "passwd" || open.file.name in ["group"]'),
    RuleDefinition("no_approver", "open.flags & O_CREAT > 0"),
    RuleDefinition("regex", 'open.file.path =~ r"^/root/"'),
    RuleDefinition("proc_only", 'process.comm == "evil"'),
    RuleDefinition("exec_sh", 'exec.file.name in ["sh", "bash"]'),
    RuleDefinition("loose", 'open.file.path =~ "*.key"'),
]


def test_approvers_listing():
    rules = RuleSet.compile(RULES)
    approvers = rules.approvers()
    assert approvers["shadow"] == {
        "open.file.path": [Approver("open.file.path", "exact", "/etc/shadow")]
    }
    [glob] = approvers["etc_glob"]["open.file.path"]
    assert (glob.kind, glob.value) == ("glob", "/etc/*")
    assert [(a.kind, a.value) for a in approvers["boot"]["open.file.path"]] == [
        ("glob", "/boot/**"),
        ("exact", "/vmlinuz"),
    ]
    assert [a.value for a in approvers["either"]["open.file.name"]] == ["passwd", "group"]
    assert approvers["no_approver"] == {}
    assert approvers["regex"] == {}
    assert rules.rules["shadow"].indexed_by == "open.file.path"
    assert rules.rules["no_approver"].indexed_by is None
    assert rules.rules["proc_only"].event_type is None
    assert rules.rules["exec_sh"].event_type == "exec"
    summary = rules.index_summary()
    assert summary["open"] == {
        "rules": 8,
        "unindexed": 2,
        "fields": {"open.file.path": 4, "open.file.name": 1, "process.comm": 1},
    }
    assert summary["exec"]["rules"] == 2


def test_index_finds_the_same_rules_as_brute_force():
    rules = RuleSet.compile(RULES)
    events = [
        _open("/etc/shadow"),
        _open("/etc/shadow", comm="vipw"),
        _open("/etc/passwd", comm="evil"),
        _open("/boot/grub/grub.cfg"),
        _open("/boot"),
        _open("/vmlinuz"),
        _open("/root/.ssh/id.key"),
        _open("relative.key"),
        _open("/var/log/syslog"),
        _open(""),
        {"type": "exec", "exec": {"file": {"name": "sh"}}, "process": {"comm": "x"}},
        {"type": "nope"},
        {},
    ]
    expected = [
        ["shadow", "etc_glob", "no_approver"],
        ["shadow", "no_approver"],
        ["etc_glob", "no_approver", "proc_only"],
        ["boot", "no_approver"],
        ["no_approver"],
        ["boot", "no_approver"],
        ["no_approver", "regex"],  # * stays within one level on paths
        ["no_approver", "loose"],
        ["no_approver"],
        ["no_approver"],
        ["exec_sh"],
        [],
        [],
    ]
    got = [rules.evaluate(e) for e in events]
    assert got == expected
    assert [rules.evaluate_all(e) for e in events] == expected
    assert [rules.reference_evaluate(e) for e in events] == expected
    assert rules.eval_errors == 0


def test_malformed_event_counts_an_error_and_matches_nothing():
    rules = RuleSet.compile([RuleDefinition("bits", "open.flags & O_CREAT > 0")])
    event = {"type": "open", "open": {"flags": "not-an-int"}}
    assert rules.evaluate(event) == []
    assert rules.eval_errors == 1


def test_events_without_a_usable_type_meet_only_common_rules():
    rules = RuleSet.compile(RULES)
    for event in ({"process": {"comm": "evil"}}, {"type": ["open"], "process": {"comm": "evil"}}):
        assert rules.evaluate(event) == ["proc_only"]
        assert rules.evaluate_all(event) == ["proc_only"]
    assert rules.eval_errors == 0


def test_compliance_filters():
    facts = {
        "os": {"name": "linux", "id": "ubuntu", "version_id": "22.04", "arch": "x86_64",
               "kernel": "6.5.0-14-generic"},
        "kernel": {"major": 6, "minor": 5},
        "hostname": "web-1",
    }  # fmt: skip
    cases = [
        ('os == "linux"', True),
        ('os.id == "ubuntu" && os.version_id in ["20.04", "22.04"]', True),
        ('os.id in ["rhel", "centos"]', False),
        ('os.arch == "x86_64"', True),
        ('os.kernel =~ "6.*"', True),
        ("kernel.version.major >= 5 && kernel.version.minor > 4", True),
        ("os.is_amazon_linux", False),
        ('os.version_id =~ r"^2[0-9]\\."', True),
    ]
    for expression, expected in cases:
        rule = compile_expression(expression, model=FILTER_MODEL)
        assert rule.matches(facts) is expected, expression
        assert rule.event_type is None


def test_macros_in_compliance_filters():
    macros = [MacroDefinition("DEBIAN_LIKE", values=["debian", "ubuntu"])]
    rule = compile_expression("os.id in DEBIAN_LIKE", model=FILTER_MODEL, macros=macros)
    assert rule.matches({"os": {"id": "debian"}}) is True
    assert rule.matches({"os": {"id": "alpine"}}) is False


def test_parse_tree():
    tree = parse('open.file.path == "/etc/shadow"', "r")
    assert tree == Binary(
        1, 16, ("rule", "r"), "==",
        Ident(1, 1, ("rule", "r"), "open.file.path"),
        Literal(1, 19, ("rule", "r"), "string", "/etc/shadow"),
    )  # fmt: skip


# -- what sources may skip (event types and discarders) ---------------------------------------


def test_event_types_are_those_rules_name_or_none_for_a_typeless_rule():
    rules = [r for r in RULES if r.id != "proc_only"]
    assert RuleSet.compile(rules).event_types() == frozenset({"open", "exec"})
    assert RuleSet.compile(RULES).event_types() is None  # process.comm meets every type
    assert RuleSet.compile([]).event_types() == frozenset()


def _file(event_type, path):
    return {f"{event_type}.file.path": path, f"{event_type}.file.name": path.rsplit("/", 1)[-1]}


def test_can_match_is_false_only_when_every_rule_rejects_the_file():
    indexed = RuleSet.compile(
        [
            RuleDefinition("shadow", 'open.file.path == "/etc/shadow" && process.uid != 0'),
            RuleDefinition("pam", 'open.file.path =~ "/etc/pam.d/*"'),
            RuleDefinition("keys", 'open.file.name in ["id_rsa", "authorized_keys"]'),
            RuleDefinition("sh", 'exec.file.name == "sh"'),
        ]
    )
    assert not indexed.can_match("open", _file("open", "/etc/ld.so.cache"))
    assert not indexed.can_match("open", _file("open", "/usr/lib/libc.so.6"))
    # Approved by path or name: the rest of the event decides, so never discarded.
    assert indexed.can_match("open", _file("open", "/etc/shadow"))
    assert indexed.can_match("open", _file("open", "/etc/pam.d/sshd"))
    assert indexed.can_match("open", _file("open", "/home/u/.ssh/id_rsa"))
    # No rule of the type at all: nothing can match.
    assert not indexed.can_match("unlink", _file("unlink", "/etc/shadow"))
    # A field the caller does not vouch for (only path and name are given): no verdict.
    assert indexed.can_match("exec", {"open.file.path": "/bin/sh"})


def test_can_match_stays_true_for_rules_without_approvers_or_on_other_fields():
    for expression in (
        "open.flags & O_CREAT > 0",  # no approver at all
        'open.file.path =~ r"^/etc/"',  # regular expressions give none
        'process.file.name == "vi" && open.file.path != "/x"',  # indexed by a process field
        'open.file.path == "/x" || process.comm == "vi"',  # one side unapproved
        "open.file.uid == 0",  # indexed by a file field the caller did not give
        'process.comm == "evil"',  # no event type: meets every event
    ):
        rules = RuleSet.compile([RuleDefinition("r", expression)])
        assert not rules.errors, rules.errors
        assert rules.can_match("open", _file("open", "/etc/ld.so.cache")), expression
