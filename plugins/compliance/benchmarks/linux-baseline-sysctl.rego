package datadog

# A kernel parameter checked at runtime (/proc/sys) and in the persistent configuration read
# at boot (/etc/sysctl.conf and sysctl.d directories, a file in a higher-priority directory
# replacing one of the same name in a lower one). Compliant when the runtime value is right,
# the key is set at least once in the effective files, and every setting there is right.
# input.runtime: the /proc/sys file (raw); input.persistent: sysctl files (raw, array);
# input.constants: key, value.

import data.datadog as dd

normalize(v) := concat(" ", regex.split(`\s+`, trim_space(v)))

dirs := ["/etc/sysctl.d/", "/run/sysctl.d/", "/usr/local/lib/sysctl.d/", "/usr/lib/sysctl.d/", "/lib/sysctl.d/"]

rank(path) := i if {
	some i, d in dirs
	startswith(path, d)
}

basename(path) := parts[count(parts) - 1] if {
	parts := split(path, "/")
}

overridden(file) if {
	some other in input.persistent
	other.path != file.path
	basename(other.path) == basename(file.path)
	rank(other.path) < rank(file.path)
}

settings contains [file.path, normalize(kv[1])] if {
	some file in input.persistent
	not overridden(file)
	some line in split(file.content, "\n")
	t := trim_space(line)
	not startswith(t, "#")
	not startswith(t, ";")
	kv := split(t, "=")
	count(kv) == 2
	replace(trim_space(kv[0]), "/", ".") == input.constants.key
}

runtime_value := normalize(input.runtime.content)

wrong_settings := [s | some s in settings; s[1] != normalize(input.constants.value)]

compliant if {
	runtime_value == normalize(input.constants.value)
	count(settings) > 0
	count(wrong_settings) == 0
}

details := {
	"key": input.constants.key,
	"expected": input.constants.value,
	"runtime": runtime_shown,
	"persistent": [concat(": ", s) | some s in settings],
}

findings contains f if {
	compliant
	f := dd.passed_finding("sysctl", input.constants.key, details)
}

findings contains f if {
	not compliant
	f := dd.failing_finding("sysctl", input.constants.key, details)
}

runtime_shown := runtime_value if {
	input.runtime
} else := null
