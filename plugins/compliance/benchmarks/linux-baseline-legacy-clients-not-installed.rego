package datadog

import data.datadog as dd

findings contains f if {
	some pkg in input.package
	f := dd.failing_finding("package", pkg.name, pkg)
}

findings contains f if {
	count(input.package) == 0
	f := dd.passed_finding("host", input.context.hostname, {"installed": []})
}
