"""Runtime security (CWS): SECL rules evaluated against events from real Linux kernel sources."""
