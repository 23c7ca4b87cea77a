package datadog

import data.datadog as dd

empty := [fields[0] |
	some line in split(input.file.content, "\n")
	fields := split(line, ":")
	count(fields) > 1
	fields[0] != ""
	fields[1] == ""
]

findings contains f if {
	input.file
	count(empty) == 0
	f := dd.passed_finding("file", "/etc/shadow", {"accounts_without_password": []})
}

findings contains f if {
	count(empty) > 0
	f := dd.failing_finding("file", "/etc/shadow", {"accounts_without_password": empty})
}

findings contains f if {
	not input.file
	f := dd.error_finding("file", "/etc/shadow", "/etc/shadow not found")
}
