package datadog

# Owner, group and permission checks on files and directories.
# input.file: one file or an array (glob); input.constants:
#   path (for the finding when the file is missing), max_permissions ("644"),
#   users / groups (allowed owner names), type ("dir" to check only directories),
#   missing: "failing" (default) or "skipped" when the file does not exist.

import data.datadog as dd

checked_files = [f | some f in input.file; wanted_type(f)] if {
	is_array(input.file)
}

checked_files = [input.file] if {
	is_object(input.file)
}

checked_files = [] if {
	not input.file
}

wanted_type(f) if {
	not input.constants.type
}

wanted_type(f) if {
	f.type == input.constants.type
}

extra_bits(f) := bits.and(f.permissions, 4095 - parse_octal(input.constants.max_permissions))

owner_ok(f) if {
	not input.constants.users
}

owner_ok(f) if {
	f.user in input.constants.users
}

group_ok(f) if {
	not input.constants.groups
}

group_ok(f) if {
	f.group in input.constants.groups
}

compliant(f) if {
	extra_bits(f) == 0
	owner_ok(f)
	group_ok(f)
}

details(f) := {
	"path": f.path,
	"permissions": sprintf("%o", [f.permissions]),
	"user": f.user,
	"group": f.group,
	"max_permissions": input.constants.max_permissions,
}

findings contains f if {
	some file in checked_files
	compliant(file)
	f := dd.passed_finding("file", file.path, details(file))
}

findings contains f if {
	some file in checked_files
	not compliant(file)
	f := dd.failing_finding("file", file.path, details(file))
}

findings contains f if {
	count(checked_files) == 0
	object.get(input.constants, "missing", "failing") == "skipped"
	f := dd.skipped_finding("file", input.constants.path, sprintf("%s does not exist", [input.constants.path]))
}

findings contains f if {
	count(checked_files) == 0
	object.get(input.constants, "missing", "failing") != "skipped"
	f := dd.failing_finding("file", input.constants.path, {"path": input.constants.path, "error": "not found"})
}
