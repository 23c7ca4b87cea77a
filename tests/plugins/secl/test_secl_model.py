"""The runtime model: each event type the sources feed, its fields and constants, read from
events shaped as the sources build them."""

from __future__ import annotations

import pytest

from plugins.secl import RUNTIME_MODEL, RuleDefinition, RuleSet
from plugins.secl.model import args_flags, args_options

PROCESS = {"pid": 42, "uid": 1000, "comm": "tool", "file": {"path": "/usr/bin/tool",
           "name": "tool"}, "ancestors": [{"comm": "bash", "file": {"name": "bash"}}]}  # fmt: skip

CASES = [
    ({"type": "exec", "exec": {"file": {"path": "/tmp/x", "name": "x"}, "argv": ["x", "-e"],
      "args": "x -e", "uid": 0}},
     'exec.file.path =~ "/tmp/*" && exec.args_flags == "e" && exec.uid == 0 && exec.argv0 == "x"'),
    ({"type": "exit", "exit": {"code": 3, "cause": "EXITED"}},
     'exit.code == 3 && exit.cause == "EXITED"'),
    ({"type": "fork", "fork": {"pid": 43, "ppid": 42}},
     "fork.pid == 43 && fork.ppid == process.pid"),
    ({"type": "open", "open": {"file": {"path": "/etc/x", "mode": 0o100600}, "flags": 0o1101}},
     "open.flags & O_TRUNC > 0 && open.flags & O_WRONLY > 0 && open.file.rights == 0600"),
    ({"type": "chmod", "chmod": {"file": {"path": "/usr/bin/su", "mode": 0o100755,
      "destination": {"mode": 0o104755}}}},
     "chmod.file.destination.mode & S_ISUID > 0 && chmod.file.destination.mode != chmod.file.mode"
     " && chmod.file.destination.rights == 04755"),
    ({"type": "chown", "chown": {"file": {"path": "/etc/shadow", "uid": 0},
      "destination": {}}}, 'chown.file.path == "/etc/shadow" && chown.file.destination.uid == 0'),
    ({"type": "chown", "chown": {"file": {"path": "/a", "destination": {"uid": 1000,
      "user": "bob"}}}},
     'chown.file.destination.uid == 1000 && chown.file.destination.user == "bob"'),
    ({"type": "rename",
      "rename": {"file": {"path": "/a", "destination": {"path": "/etc/cron.d/x"}}}},
     'rename.file.destination.path =~ "/etc/cron.d/*"'),
    ({"type": "unlink", "unlink": {"file": {"path": "/var/log/auth.log"}, "flags": 0}},
     'unlink.file.path =~ "/var/log/**" && unlink.flags & AT_REMOVEDIR == 0'),
    ({"type": "link", "link": {"file": {"path": "/etc/shadow", "destination": {"path": "/tmp/s"}}}},
     'link.file.destination.path == "/tmp/s"'),
    ({"type": "utimes", "utimes": {"file": {"path": "/bin/ls"}}}, 'utimes.file.name == ""'),
    ({"type": "mkdir", "mkdir": {"file": {"path": "/tmp/d", "destination": {"mode": 0o777}}}},
     "mkdir.file.destination.mode == 0777"),
    ({"type": "rmdir", "rmdir": {"file": {"path": "/tmp/d"}, "retval": -2}},
     "rmdir.retval == -ENOENT"),
    ({"type": "setuid", "setuid": {"uid": 0, "euid": 0, "user": "root"}},
     'setuid.uid == 0 && setuid.user == "root" && process.uid != 0'),
    ({"type": "setgid", "setgid": {"gid": 0, "egid": 0}}, "setgid.gid == 0 && setgid.egid == 0"),
    ({"type": "ptrace", "ptrace": {"request": 16, "tracee": {"pid": 1, "file": {"name": "init"}}}},
     'ptrace.request == PTRACE_ATTACH && ptrace.tracee.file.name == "init"'),
    ({"type": "load_module", "load_module": {"name": "rootkit", "loaded_from_memory": True}},
     'load_module.name == "rootkit" && load_module.loaded_from_memory'),
    ({"type": "connect", "connect": {"addr": {"ip": "1.1.1.1", "port": 53, "family": 2}}},
     "connect.addr.ip not in 10.0.0.0/8 && connect.addr.family == AF_INET"),
    ({"type": "bind", "bind": {"addr": {"ip": "0.0.0.0", "port": 22}}}, "bind.addr.port < 1024"),
    ({"type": "mount", "mount": {"mountpoint": {"path": "/mnt"}, "source": {"path": "/dev/sda1"},
      "fs_type": "ext4"}}, 'mount.fs_type == "ext4" && mount.mountpoint.path == "/mnt"'),
    ({"type": "signal", "signal": {"type": 9, "pid": 1, "target": {"file": {"name": "agent"}}}},
     'signal.type == SIGKILL && signal.target.file.name == "agent" && signal.pid == 1'),
]  # fmt: skip


@pytest.mark.parametrize(("event", "expression"), CASES)
def test_event_type_fields(event, expression):
    event = {**event, "process": PROCESS}
    rules = RuleSet.compile([RuleDefinition("r", expression)])
    assert rules.errors == {}
    assert rules.rules["r"].event_type == event["type"]
    assert rules.evaluate(event) == ["r"]
    assert rules.reference_evaluate(event) == ["r"]
    assert rules.evaluate({**event, "type": "other"}) == []


def test_event_types_of_the_runtime_model():
    assert RUNTIME_MODEL.event_types == {
        "exec", "exit", "fork", "open", "chmod", "chown", "rename", "unlink", "link", "utimes",
        "mkdir", "rmdir", "setuid", "setgid", "ptrace", "load_module", "connect", "bind",
        "mount", "signal",
    }  # fmt: skip
    for name, spec in RUNTIME_MODEL.fields.items():
        assert spec.name == name
        assert spec.event_type is None or name.startswith(spec.event_type + ".")


def test_args_helpers():
    argv = ["ls", "-la", "--color=auto", "-T", "8", "--width", "80", "--all", "-", "file"]
    # "-T 8" and "--width 80" read as options and as flags: without the program's own
    # parser there is no telling whether the next argument is a value.
    assert args_flags(argv) == ("l", "a", "T", "width", "all")
    assert args_options(argv) == ("color=auto", "T=8", "width=80")
    assert args_flags(None) == ()
    assert args_options(["prog"]) == ()
