"""Events shared by the SECL tests (plain dicts shaped as the event sources produce them).
A helper module rather than a conftest.py so its name cannot clash with other conftests."""

from __future__ import annotations

OPEN_EVENT = {
    "type": "open",
    "timestamp": 1000.0,
    "open": {
        "file": {"path": "/etc/shadow", "name": "shadow", "mode": 0o100640, "uid": 0, "gid": 42,
                 "inode": 7},
        "flags": 0o102,  # O_RDWR | O_CREAT
        "retval": -13,
    },
    "process": {
        "pid": 10, "ppid": 1, "uid": 0, "gid": 0, "user": "root", "group": "root",
        "comm": "cat", "tty_name": "pts0",
        "file": {"path": "/usr/bin/cat", "name": "cat", "mode": 0o100755},
        "argv": ["cat", "-ln", "--width=8", "-T", "8", "--verbose", "/etc/shadow"],
        "args": "cat -ln --width=8 -T 8 --verbose /etc/shadow",
        "envs": ["PATH", "HOME"],
        "container": {"id": "abc123"},
        "created_at": 990.0,
        "is_thread": False,
        "ancestors": [
            {"pid": 5, "uid": 1000, "comm": "bash", "argv": ["bash", "-i"],
             "file": {"path": "/usr/bin/bash", "name": "bash"}},
            {"pid": 2, "uid": 0, "comm": "sshd", "argv": ["sshd", "-D"],
             "file": {"path": "/usr/sbin/sshd", "name": "sshd"}},
            {"pid": 1, "uid": 0, "comm": "systemd", "file": {"path": "/sbin/init", "name": "init"}},
        ],
    },
}  # fmt: skip

CONNECT_EVENT = {
    "type": "connect",
    "timestamp": 1000.0,
    "connect": {"addr": {"ip": "10.1.2.3", "port": 443, "family": 2, "is_public": False},
                "retval": 0},
    "process": {"pid": 20, "comm": "curl", "file": {"path": "/usr/bin/curl", "name": "curl"},
                "created_at": 400.0, "is_thread": True, "ancestors": []},
}  # fmt: skip
