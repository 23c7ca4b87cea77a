package datadog

# A regular file writable by others, or a directory writable by others without the sticky
# bit (so anyone may replace what is inside). Symbolic links are not checked themselves.

import data.datadog as dd

world_writable(f) if {
	f.type == "file"
	bits.and(f.permissions, 2) != 0
}

world_writable(f) if {
	f.type == "dir"
	bits.and(f.permissions, 2) != 0
	bits.and(f.permissions, 512) == 0
}

offending := [f | some f in input.file; world_writable(f)]

findings contains f if {
	some file in offending
	f := dd.failing_finding("file", file.path, {"path": file.path, "permissions": sprintf("%o", [file.permissions])})
}

findings contains f if {
	count(offending) == 0
	f := dd.passed_finding("host", input.context.hostname, {"checked_files": count(input.file)})
}
