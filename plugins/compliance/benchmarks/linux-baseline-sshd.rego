package datadog

# sshd's effective value of one keyword, as `sshd -T` would report it for the default
# connection: the first value wins, `Include` files are read where they are included, and
# `Match` blocks are ignored. input.sshd_config: /etc/ssh/sshd_config (raw);
# input.sshd_includes: /etc/ssh/sshd_config.d/*.conf (raw, array); input.constants:
#   keyword (lower case), default (sshd's default value), and one of
#   equals ("no"), at_most (4).

import data.datadog as dd

lines_of(text) := split(replace(text, "\r", ""), "\n")

kv(line) := [lower(parts[0]), parts[1]] if {
	t := trim_space(line)
	t != ""
	not startswith(t, "#")
	parts := regex.split(`[\s=]+`, t)
	count(parts) > 1
}

# rego-cpp enumerates `some i, x in arr` reliably; `some i` with `f(arr[i])` it does not.
in_match(lines, i) if {
	some m, line in lines
	kv(line)[0] == "match"
	m < i
}

main_lines := lines_of(input.sshd_config.content)

absolute(p) := p if {
	startswith(p, "/")
}

absolute(p) := concat("", ["/etc/ssh/", p]) if {
	not startswith(p, "/")
}

entries contains [i, "", 0, e[0], e[1]] if {
	some i, line in main_lines
	e := kv(line)
	e[0] != "include"
	not in_match(main_lines, i)
}

entries contains [i, inc.path, j, e[0], e[1]] if {
	some i, line in main_lines
	k := kv(line)
	k[0] == "include"
	not in_match(main_lines, i)
	some inc in input.sshd_includes
	glob.match(absolute(k[1]), ["/"], inc.path)
	inc_lines := lines_of(inc.content)
	some j, inc_line in inc_lines
	e := kv(inc_line)
	not in_match(inc_lines, j)
}

configured := sort([e | some e in entries; e[3] == input.constants.keyword])

effective := configured[0][4] if {
	count(configured) > 0
}

effective := input.constants.default if {
	count(configured) == 0
}

compliant if {
	input.constants.equals
	lower(effective) == lower(input.constants.equals)
}

compliant if {
	input.constants.at_most
	to_number(effective) <= input.constants.at_most
}

details := {"keyword": input.constants.keyword, "value": effective}

findings contains f if {
	input.sshd_config
	compliant
	f := dd.passed_finding("sshd_config", "/etc/ssh/sshd_config", details)
}

findings contains f if {
	input.sshd_config
	not compliant
	f := dd.failing_finding("sshd_config", "/etc/ssh/sshd_config", details)
}

findings contains f if {
	not input.sshd_config
	f := dd.skipped_finding("sshd_config", "/etc/ssh/sshd_config", "sshd is not configured on this host")
}
