package datadog

# input.audit_<name>: the kernel's watch rules on /etc/<name> (from AUDIT_LIST_RULES).

import data.datadog as dd

watched := {"passwd": input.audit_passwd, "group": input.audit_group, "shadow": input.audit_shadow, "gshadow": input.audit_gshadow}

covered(rules) if {
	some r in rules
	r["permission.write"]
	r["permission.attribute"]
}

findings contains f if {
	some name, rules in watched
	covered(rules)
	f := dd.passed_finding("audit", concat("", ["/etc/", name]), {"rules": count(rules)})
}

findings contains f if {
	some name, rules in watched
	not covered(rules)
	f := dd.failing_finding("audit", concat("", ["/etc/", name]), {"rules": count(rules)})
}
