# parse_octal(string) -> number: Datadog's extra builtin, written in Rego (no custom builtins
# in regopy). Appended to every package that calls it; handles up to 6 octal digits.
_dd_oct(c) := n if {
	n := to_number(c)
	n < 8
}
parse_octal(s) := n if {
	d := split(trim_left(s, "0"), "")
	count(d) == 0
	n := 0
}
parse_octal(s) := n if {
	d := split(trim_left(s, "0"), "")
	count(d) == 1
	n := _dd_oct(d[0])
}
parse_octal(s) := n if {
	d := split(trim_left(s, "0"), "")
	count(d) == 2
	n := (_dd_oct(d[0]) * 8) + _dd_oct(d[1])
}
parse_octal(s) := n if {
	d := split(trim_left(s, "0"), "")
	count(d) == 3
	n := ((_dd_oct(d[0]) * 64) + (_dd_oct(d[1]) * 8)) + _dd_oct(d[2])
}
parse_octal(s) := n if {
	d := split(trim_left(s, "0"), "")
	count(d) == 4
	n := (((_dd_oct(d[0]) * 512) + (_dd_oct(d[1]) * 64)) + (_dd_oct(d[2]) * 8)) + _dd_oct(d[3])
}
parse_octal(s) := n if {
	d := split(trim_left(s, "0"), "")
	count(d) == 5
	a := ((_dd_oct(d[0]) * 4096) + (_dd_oct(d[1]) * 512)) + (_dd_oct(d[2]) * 64)
	n := (a + (_dd_oct(d[3]) * 8)) + _dd_oct(d[4])
}
parse_octal(s) := n if {
	d := split(trim_left(s, "0"), "")
	count(d) == 6
	a := ((_dd_oct(d[0]) * 32768) + (_dd_oct(d[1]) * 4096)) + (_dd_oct(d[2]) * 512)
	n := ((a + (_dd_oct(d[3]) * 64)) + (_dd_oct(d[4]) * 8)) + _dd_oct(d[5])
}
