package datadog

import data.datadog as dd

findings contains f if {
	bits.and(input.file.permissions, 512) != 0
	f := dd.passed_finding("file", "/tmp", {"permissions": sprintf("%o", [input.file.permissions])})
}

findings contains f if {
	bits.and(input.file.permissions, 512) == 0
	f := dd.failing_finding("file", "/tmp", {"permissions": sprintf("%o", [input.file.permissions])})
}

findings contains f if {
	not input.file
	f := dd.failing_finding("file", "/tmp", {"error": "/tmp does not exist"})
}
