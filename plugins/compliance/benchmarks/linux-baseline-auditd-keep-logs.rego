package datadog

import data.datadog as dd

actions := [lower(trim_space(kv[1])) |
	some line in split(input.file.content, "\n")
	not startswith(trim_space(line), "#")
	kv := split(line, "=")
	count(kv) == 2
	lower(trim_space(kv[0])) == "max_log_file_action"
]

action := actions[count(actions) - 1] if {
	count(actions) > 0
}

findings contains f if {
	action == "keep_logs"
	f := dd.passed_finding("file", "/etc/audit/auditd.conf", {"max_log_file_action": action})
}

findings contains f if {
	input.file
	not action == "keep_logs"
	f := dd.failing_finding("file", "/etc/audit/auditd.conf", {"max_log_file_action": actions})
}

findings contains f if {
	not input.file
	f := dd.failing_finding("file", "/etc/audit/auditd.conf", {"error": "auditd is not configured (/etc/audit/auditd.conf not found)"})
}
