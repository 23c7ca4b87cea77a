package datadog

import data.datadog as dd

findings contains f if {
	not input.group
	f := dd.passed_finding("group", "shadow", {"users": []})
}

findings contains f if {
	count(input.group.users) == 0
	f := dd.passed_finding("group", "shadow", {"users": []})
}

findings contains f if {
	count(input.group.users) > 0
	f := dd.failing_finding("group", "shadow", {"users": input.group.users})
}
