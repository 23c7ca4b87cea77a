package datadog

import data.datadog as dd

uid0_accounts := [fields[0] |
	some line in split(input.file.content, "\n")
	not startswith(trim_space(line), "#")
	fields := split(line, ":")
	count(fields) > 2
	fields[2] == "0"
]

others := [name | some name in uid0_accounts; name != "root"]

findings contains f if {
	input.file
	count(others) == 0
	f := dd.passed_finding("file", "/etc/passwd", {"uid0_accounts": uid0_accounts})
}

findings contains f if {
	count(others) > 0
	f := dd.failing_finding("file", "/etc/passwd", {"uid0_accounts": uid0_accounts})
}

findings contains f if {
	not input.file
	f := dd.error_finding("file", "/etc/passwd", "/etc/passwd not found")
}
