"""Compile errors: one exception type, naming the rule (or macro), the line, the column and
what was expected. Messages are checked verbatim."""

from __future__ import annotations

import pytest

from plugins.secl import (
    FILTER_MODEL,
    MacroDefinition,
    RuleDefinition,
    RuleSet,
    SECLError,
    VariableStore,
    compile_expression,
)

LOOP_MACROS = [
    MacroDefinition("LOOP", expression="LOOP2"),
    MacroDefinition("LOOP2", expression="LOOP"),
]

ERROR_CASES = [
    (
        'open.file.pth == "x"',
        "rule r, line 1, column 1: expected a field, constant or macro, got unknown "
        "identifier 'open.file.pth'",
    ),
    (
        "open.file.path == 1",
        "rule r, line 1, column 19: expected a string value after '==' to compare with "
        "string field 'open.file.path', got int 1",
    ),
    (
        'open.flags == "x"',
        "rule r, line 1, column 15: expected an int value after '==' to compare with "
        "int field 'open.flags', got string \"x\"",
    ),
    (
        'open.file.path < "x"',
        "rule r, line 1, column 1: expected an int, duration or time operand for '<', "
        "got string field 'open.file.path'",
    ),
    (
        'open.flags =~ "x*"',
        "rule r, line 1, column 1: expected a string operand for '=~', got int field 'open.flags'",
    ),
    (
        "open.file.path =~ 1",
        "rule r, line 1, column 19: expected a pattern or regular expression after '=~', got int 1",
    ),
    (
        'open.file.path == "x" && exec.file.path == "y"',
        "rule r, line 1, column 26: expected fields of event type 'open' (as "
        "'open.file.path'), got 'exec.file.path' of event type 'exec'",
    ),
    (
        "open.file.path",
        "rule r, line 1, column 1: expected a boolean expression, got string field "
        "'open.file.path'",
    ),
    (
        'open.flags & "x" > 0',
        "rule r, line 1, column 14: expected an int operand for '&', got string \"x\"",
    ),
    (
        'open.file.path in "x"',
        "rule r, line 1, column 19: expected a list, a list macro or a CIDR after 'in',"
        " got string value",
    ),
    (
        'open.flags in ["a"]',
        "rule r, line 1, column 16: expected int values in the list for int field "
        "'open.flags', got string \"a\"",
    ),
    (
        'open.file.path == r"("',
        'rule r, line 1, column 19: expected a valid regular expression, got r"(": '
        "missing ), unterminated subpattern at position 0",
    ),
    (
        "open.file.path ==",
        "rule r, line 1, column 18: expected a value, a field or '(', got the end of "
        "the expression",
    ),
    (
        'open.file.path == "x" &&',
        "rule r, line 1, column 25: expected a value, a field or '(', got the end of "
        "the expression",
    ),
    (
        '(open.file.path == "x"',
        "rule r, line 1, column 23: expected ')', got the end of the expression",
    ),
    (
        'open.file.path == "x")',
        "rule r, line 1, column 22: expected an operator or the end of the expression, got ')'",
    ),
    (
        'open.file.path == "x',
        "rule r, line 1, column 19: expected a closing '\"' for the string",
    ),
    (
        "open.file.path == 1.5",
        "rule r, line 1, column 20: expected an operator, a value or a field, got '.'",
    ),
    (
        'open.file.path @ "x"',
        "rule r, line 1, column 16: expected an operator, a value or a field, got '@'",
    ),
    (
        "process.list[_].key == 1",
        "rule r, line 1, column 13: expected an operator after the field, got a "
        "register ('[_]' and '[A]' are not supported)",
    ),
    (
        "process.is_thread == 1",
        "rule r, line 1, column 22: expected a bool value after '==' to compare with "
        "bool field 'process.is_thread', got int 1",
    ),
    (
        'process.created_at > "x"',
        "rule r, line 1, column 22: expected a time value after '>' to compare with "
        "time field 'process.created_at', got string \"x\"",
    ),
    (
        'connect.addr.ip == "10.0.0.1"',
        "rule r, line 1, column 20: expected an ip value after '==' to compare with ip "
        "field 'connect.addr.ip', got string \"10.0.0.1\"",
    ),
    (
        'connect.addr.ip in ["a"]',
        "rule r, line 1, column 21: expected ip values in the list for ip field "
        "'connect.addr.ip', got string \"a\"",
    ),
    (
        "open.flags allin 10.0.0.0/8",
        "rule r, line 1, column 1: expected an ip operand for 'allin', got int field 'open.flags'",
    ),
    (
        "connect.addr.ip in 10.0.0.300/8",
        "rule r, line 1, column 20: expected an IP address or CIDR, got '10.0.0.300/8'",
    ),
    (
        "${nope} == 1",
        "rule r, line 1, column 1: expected a declared variable or a field, got unknown"
        " variable '${nope}'",
    ),
    (
        "LOOP",
        "macro LOOP2, line 1, column 1: expected a macro that does not refer to itself,"
        " got 'LOOP' again",
    ),
    (
        'open.file.path == ["a"]',
        "rule r, line 1, column 19: expected a single value, got a list (lists go after 'in')",
    ),
    (
        "open.file.path in [open.file.name]",
        "rule r, line 1, column 20: expected constant values in the list after 'in', "
        "got string field 'open.file.name'",
    ),
    (
        "",
        "rule r, line 1, column 1: expected an expression, got the end of the expression",
    ),
    (
        'open.file.path == "a"\n  && open.flags == "x"',
        "rule r, line 2, column 20: expected an int value after '==' to compare with "
        "int field 'open.flags', got string \"x\"",
    ),
    (
        'open.file.path == ~"x*" == 1',
        "rule r, line 1, column 25: expected an operator or the end of the expression, got '=='",
    ),
    (
        '~"a*" == ~"b*"',
        "rule r, line 1, column 1: expected a string operand to compare with a pattern,"
        ' got pattern ~"a*"',
    ),
    (
        'process.comm < ~"a*"',
        "rule r, line 1, column 16: expected a value after '<', got pattern ~\"a*\"",
    ),
    (
        "(open.flags == 1) == true",
        "rule r, line 1, column 13: expected a value, got a condition (comparisons "
        "cannot be compared)",
    ),
    (
        "open.flags == !open.flags",
        "rule r, line 1, column 15: expected a value, a field or '(', got '!'",
    ),
]


@pytest.mark.parametrize(("expression", "message"), ERROR_CASES)
def test_error_message(expression, message):
    rules = RuleSet.compile([RuleDefinition("r", expression)], LOOP_MACROS)
    assert list(rules.errors) == ["r"]
    error = rules.errors["r"]
    assert isinstance(error, SECLError)
    assert str(error) == message
    assert rules.rules == {}


def test_error_attributes():
    with pytest.raises(SECLError) as info:
        compile_expression('open.file.path == "a"\n  && open.flags == "x"', rule_id="two_lines")
    error = info.value
    assert (error.kind, error.rule_id, error.line, error.column) == ("rule", "two_lines", 2, 20)
    assert error.message == (
        "expected an int value after '==' to compare with int field 'open.flags', got string \"x\""
    )


def test_bad_rule_does_not_stop_the_others():
    rules = RuleSet.compile(
        [
            RuleDefinition("good1", 'open.file.path == "/a"'),
            RuleDefinition("bad", "open.file.path == 1"),
            RuleDefinition("good2", 'exec.file.name == "sh"'),
        ]
    )
    assert list(rules.rules) == ["good1", "good2"]
    assert list(rules.errors) == ["bad"]


def test_duplicate_rule_id():
    rules = RuleSet.compile(
        [
            RuleDefinition("a", 'open.file.path == "/a"'),
            RuleDefinition("a", 'open.file.path == "/b"'),
        ]
    )
    assert rules.rules == {}
    assert str(rules.errors["a"]) == "rule a: expected a unique rule id, got a duplicate"


def test_macro_errors_are_reported_and_name_the_macro():
    rules = RuleSet.compile(
        [RuleDefinition("uses_bad", "open.file.path in BROKEN"), RuleDefinition("ok", "ok_macro")],
        [
            MacroDefinition("BROKEN", expression='["/a", '),
            MacroDefinition("UNKNOWN", expression="open.file.nope == 1"),
            MacroDefinition("ok_macro", expression='open.file.path == "/x"'),
            MacroDefinition("BOTH", expression="1", values=["a"]),
            MacroDefinition("BADVALUES", values=[1.5]),
            MacroDefinition("ok_macro", values=["dup"]),
        ],
    )
    assert {k: str(v) for k, v in rules.macro_errors.items()} == {
        "BROKEN": "macro BROKEN, line 1, column 8: expected a value, a field or '(', "
        "got the end of the expression",
        "UNKNOWN": "macro UNKNOWN, line 1, column 1: expected a field, constant or macro, "
        "got unknown identifier 'open.file.nope'",
        "BOTH": "macro BOTH: expected exactly one of 'expression' or 'values'",
        "BADVALUES": "macro BADVALUES: expected string or int values, got 1.5",
        "ok_macro": "macro ok_macro: expected a unique macro id, got a duplicate",
    }
    assert str(rules.errors["uses_bad"]) == (
        "macro BROKEN, line 1, column 8: expected a value, a field or '(', "
        "got the end of the expression"
    )
    assert list(rules.rules) == ["ok"]


def test_variable_type_is_checked():
    store = VariableStore()
    store.declare("count", "int")
    rules = RuleSet.compile([RuleDefinition("r", '${count} == "x"')], variables=store)
    assert str(rules.errors["r"]) == (
        "rule r, line 1, column 13: expected an int value after '==' to compare with "
        "int variable '${count}', got string \"x\""
    )
    with pytest.raises(SECLError) as info:
        store.declare("count", "string")
    assert str(info.value) == "variable count: expected type int as declared before, got string"
    with pytest.raises(SECLError) as info:
        store.set("undeclared", 1)
    assert str(info.value) == "variable undeclared: expected a declared variable"


def test_filter_model_rejects_runtime_fields():
    with pytest.raises(SECLError) as info:
        compile_expression('open.file.path == "/x"', model=FILTER_MODEL, rule_id="cis_1_1")
    assert str(info.value) == (
        "rule cis_1_1, line 1, column 1: expected a field, constant or macro, "
        "got unknown identifier 'open.file.path'"
    )
