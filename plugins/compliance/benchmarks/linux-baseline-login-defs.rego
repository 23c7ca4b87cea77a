package datadog

# One setting of /etc/login.defs (the last occurrence wins, as in shadow's getdef).
# input.file: /etc/login.defs (raw); input.constants: key and at_least / at_most (numbers)
# or one_of (strings).

import data.datadog as dd

values := [parts[1] |
	some line in split(input.file.content, "\n")
	parts := regex.split(`\s+`, trim_space(line))
	count(parts) > 1
	parts[0] == input.constants.key
]

value := values[count(values) - 1] if {
	count(values) > 0
}

in_range if {
	n := to_number(value)
	n >= object.get(input.constants, "at_least", n)
	n <= object.get(input.constants, "at_most", n)
	not input.constants.one_of
}

in_range if {
	upper(value) in input.constants.one_of
}

findings contains f if {
	in_range
	f := dd.passed_finding("login_defs", input.constants.key, {"key": input.constants.key, "value": value})
}

findings contains f if {
	input.file
	not in_range
	f := dd.failing_finding("login_defs", input.constants.key, {"key": input.constants.key, "value": shown_value})
}

findings contains f if {
	not input.file
	f := dd.failing_finding("login_defs", input.constants.key, {"key": input.constants.key, "error": "/etc/login.defs not found"})
}

shown_value := value if {
	count(values) > 0
} else := null
