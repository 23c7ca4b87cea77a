"""Property tests: the parser and checker raise nothing but SECLError on any input, and the
indexed evaluation agrees with brute force and with the reference tree walker on random rules
and random events."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.secl import MacroDefinition, RuleDefinition, RuleSet, SECLError, parse

TOKENS = [
    "open.file.path", "open.flags", "process.ancestors.file.name", "process.argv", "exec.file.name",
    "connect.addr.ip", "process.is_thread", "process.created_at", "MACRO", "LIST", "O_CREAT",
    "==", "!=", "<", "<=", ">", ">=", "=~", "!~", "&&", "||", "and", "or", "not", "!", "in",
    "allin", "&", "|", "^", "-", "(", ")", "[", "]", ",", '"/etc/*"', '~"/etc/**"', 'r"^a.*"',
    'r"("', '"${process.pid}"', '"${nope}"', "${var}", "1", "0x10", "10s", "5m", "10.0.0.0/8",
    "::1", "true", "false", "#c\n", ".length", "[_]", "1.5", "@", '"', "${", "999999999999999999",
]  # fmt: skip

MACROS = [
    MacroDefinition("MACRO", expression='open.file.path == "/x"'),
    MacroDefinition("LIST", values=["a", "b"]),
]


def _compile_only_secl_errors(text):
    with contextlib.suppress(SECLError):
        parse(text, "fuzz")
    rules = RuleSet.compile([RuleDefinition("fuzz", text)], MACROS)  # must not raise
    assert len(rules.rules) + len(rules.errors) == 1


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join))
def test_token_soup_raises_only_secl_errors(text):
    _compile_only_secl_errors(text)


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab.rx"~$ {}[]()!=<>&|^-#,/*_019:\n\\')), max_size=40))
def test_character_soup_raises_only_secl_errors(text):
    _compile_only_secl_errors(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_raises_only_secl_errors(text):
    _compile_only_secl_errors(text)


def test_deep_nesting_is_an_error_not_a_crash():
    for text in ["(" * 5000 + "true" + ")" * 5000, "!" * 5000 + "true", "[" * 5000,
                 "open.flags" + " | 1" * 5000 + " > 0", "- " * 5000 + "1 == 1"]:  # fmt: skip
        _compile_only_secl_errors(text)
    long_chain = " || ".join(f'open.file.path == "/p{i}"' for i in range(3000))
    rules = RuleSet.compile([RuleDefinition("long", long_chain)])
    assert rules.errors == {}
    event = {"type": "open", "open": {"file": {"path": "/p2999"}}}
    assert rules.evaluate(event) == rules.reference_evaluate(event) == ["long"]


# -- evaluation against the reference ----------------------------------------------------------

PATHS = ["/etc/shadow", "/etc/passwd", "/etc/ssh/sshd_config", "/usr/bin/cat", "/tmp/x", "", "/"]
NAMES = ["shadow", "passwd", "cat", "sshd", "bash", "sh", ""]
PATTERNS = ['~"/etc/*"', '~"/etc/**"', '~"/usr/*/cat"', '~"*"', 'r"^/etc"', 'r"sh"', '~"/tmp*"']
NAME_PATTERNS = ['~"s*"', '~"*sh"', 'r"a"', '~"ca*"']


def _q(s):
    return '"' + s + '"'


def _string_atom(field, values, patterns):
    value = st.sampled_from([_q(v) for v in values] + patterns)
    plain = st.sampled_from([_q(v) for v in values])
    return st.one_of(
        st.tuples(st.sampled_from(["==", "!="]), value).map(lambda t: f"{field} {t[0]} {t[1]}"),
        st.tuples(st.sampled_from(["=~", "!~"]), st.sampled_from([*patterns, _q("/etc/*")])).map(
            lambda t: f"{field} {t[0]} {t[1]}"
        ),
        st.tuples(
            st.sampled_from(["in", "not in"]), st.lists(st.one_of(value, plain), max_size=4)
        ).map(lambda t: f"{field} {t[0]} [{', '.join(t[1])}]"),
    )


INT_ATOMS = st.one_of(
    st.tuples(
        st.sampled_from(
            [
                "open.flags",
                "open.file.uid",
                "process.uid",
                "process.ancestors.uid",
                "open.file.path.length",
                "process.argv.length",
            ]
        ),
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        st.sampled_from(["0", "1", "2", "1000", "O_CREAT", "O_RDWR|O_CREAT"]),
    ).map(" ".join),
    st.tuples(
        st.sampled_from(["O_CREAT", "O_TRUNC", "O_RDWR", "(O_CREAT|O_TRUNC)", "^O_RDWR"]),
        st.sampled_from(["> 0", "== 0", "!= 0"]),
    ).map(lambda t: f"open.flags & {t[0]} {t[1]}"),
    st.sampled_from(["open.flags in [0, 2, O_RDWR|O_CREAT]", "process.uid not in [0, 1000]"]),
)

OPEN_ATOMS = st.one_of(
    _string_atom("open.file.path", PATHS, PATTERNS),
    _string_atom("open.file.name", NAMES, NAME_PATTERNS),
    _string_atom("process.comm", NAMES, NAME_PATTERNS),
    _string_atom("process.ancestors.file.name", NAMES, NAME_PATTERNS),
    _string_atom("process.argv", ["-l", "-c", "cat", "x"], ['~"-*"']),
    _string_atom("process.args_flags", ["l", "n", "c"], []),
    INT_ATOMS,
    st.sampled_from(
        [
            "process.is_thread",
            "!process.is_thread",
            "process.created_at > 5s",
            "process.created_at < 1m",
            "process.is_thread == true",
        ]
    ),
)

CONNECT_ATOMS = st.one_of(
    st.tuples(
        st.sampled_from(["in", "not in", "==", "!="]),
        st.sampled_from(["10.0.0.0/8", "127.0.0.1", "::1", "fe80::/10", "192.168.1.0/24"]),
    ).map(lambda t: f"connect.addr.ip {t[0]} {t[1]}"),
    st.sampled_from(
        [
            "connect.addr.port in [80, 443]",
            "connect.addr.port > 1024",
            "connect.addr.ip in [10.0.0.0/8, ::1]",
            "connect.addr.family == AF_INET6",
        ]
    ),
    _string_atom("process.comm", NAMES, NAME_PATTERNS),
)


def _expressions(atoms):
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["&&", "||", "and", "or"]), inner).map(
                lambda t: f"({t[0]}) {t[1]} ({t[2]})"
            ),
            inner.map(lambda e: f"!({e})"),
        ),
        max_leaves=6,
    )


RULES = st.lists(st.one_of(_expressions(OPEN_ATOMS), _expressions(CONNECT_ATOMS)),
                 min_size=1, max_size=8)  # fmt: skip

_PROCESS = st.fixed_dictionaries(
    {},
    optional={
        "comm": st.sampled_from(NAMES),
        "uid": st.sampled_from([0, 1, 1000]),
        "is_thread": st.booleans(),
        "created_at": st.sampled_from([0.0, 990.0, 999.0, 1000.0]),
        "argv": st.lists(st.sampled_from(["cat", "-l", "-ln", "-c", "x", "--n"]), max_size=4),
        "file": st.fixed_dictionaries({}, optional={"name": st.sampled_from(NAMES)}),
    },
)
PROCESS = st.builds(
    lambda p, ancestors: {**p, "ancestors": ancestors}, _PROCESS, st.lists(_PROCESS, max_size=3)
)

OPEN_EVENTS = st.fixed_dictionaries(
    {
        "type": st.just("open"),
        "timestamp": st.just(1000.0),
        "open": st.fixed_dictionaries(
            {},
            optional={
                "file": st.fixed_dictionaries(
                    {},
                    optional={"path": st.sampled_from(PATHS), "name": st.sampled_from(NAMES),
                              "uid": st.sampled_from([0, 1, 1000])},
                ),
                "flags": st.sampled_from([0, 1, 2, 0o100, 0o102, 0o1101]),
            },
        ),
    },
    optional={"process": PROCESS},
)  # fmt: skip
CONNECT_EVENTS = st.fixed_dictionaries(
    {
        "type": st.just("connect"),
        "timestamp": st.just(1000.0),
        "connect": st.fixed_dictionaries(
            {
                "addr": st.fixed_dictionaries(
                    {},
                    optional={
                        "ip": st.sampled_from(["10.1.2.3", "127.0.0.1", "::1", "fe80::2",
                                               "192.168.1.9", "8.8.8.8", "not-an-ip", ""]),
                        "port": st.sampled_from([80, 443, 8080]),
                        "family": st.sampled_from([2, 10]),
                    },
                )
            }
        ),
    },
    optional={"process": PROCESS},
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RULES, st.lists(st.one_of(OPEN_EVENTS, CONNECT_EVENTS), min_size=1, max_size=6))
def test_indexed_evaluation_matches_the_reference(expressions, events):
    rules = RuleSet.compile(
        [RuleDefinition(f"r{i}", e) for i, e in enumerate(expressions)], clock=lambda: 0.0
    )
    assert rules.errors == {}
    for event in events:
        expected = rules.reference_evaluate(event)
        assert rules.evaluate(event) == expected
        assert rules.evaluate_all(event) == expected
        assert rules.evaluate_every_rule(event) == expected
    assert rules.eval_errors == 0
