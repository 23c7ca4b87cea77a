"""SECL rule evaluation: one million mixed kernel events through ~40 rules written in the style
of Datadog's default policy, with the approver indexes (``RuleSet.evaluate``) against
evaluating every rule on every event (``RuleSet.evaluate_every_rule``) in the same run, plus
the event-type buckets alone (``evaluate_all``) for reference.

The events are generated from a seeded pool of 20 000 distinct events (mostly noise such as
library loads and /proc reads, a few percent touching sensitive files), replayed in order
until one million have been evaluated. Both paths must return the same matches.
"""

from __future__ import annotations

import functools
import random
import re
import time
from typing import Any

from plugins.secl import MacroDefinition, RuleDefinition, RuleSet

N_EVENTS = 1_000_000
POOL = 20_000

MACROS = [
    MacroDefinition("PACKAGE_MANAGERS", values=[
        "/usr/bin/dpkg", "/usr/bin/apt", "/usr/bin/apt-get", "/usr/bin/rpm", "/usr/bin/yum",
        "/usr/bin/dnf", "/usr/bin/pip", "/usr/bin/snap", "/usr/bin/unattended-upgrade",
    ]),
    MacroDefinition("SHELLS", values=["sh", "bash", "dash", "zsh", "ksh", "fish", "busybox"]),
    MacroDefinition("WEB_SERVERS", values=["nginx", "apache2", "httpd", "php-fpm", "node"]),
    MacroDefinition("WRITE_FLAGS", expression="O_CREAT|O_TRUNC|O_APPEND|O_RDWR|O_WRONLY"),
    MacroDefinition("opened_for_write", expression="open.flags & (WRITE_FLAGS) > 0"),
    MacroDefinition("BINARIES", expression='[~"/usr/bin/*", ~"/usr/sbin/*", ~"/bin/*", '
                                           '~"/sbin/*", ~"/boot/**", ~"/usr/local/bin/*"]'),
    MacroDefinition("PRIVATE_NETS", expression="[10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                                               "127.0.0.0/8, ::1]"),
]  # fmt: skip

RULES = [
    # files opened for writing (FIM)
    ("pci_critical_binaries_open", "open.file.path in BINARIES && opened_for_write && "
     "process.ancestors.file.path not in PACKAGE_MANAGERS"),
    ("shadow_read", 'open.file.path in ["/etc/shadow", "/etc/gshadow"] && '
     'process.file.path not in ["/usr/sbin/vipw", "/usr/bin/passwd", "/usr/sbin/chpasswd"]'),
    ("pam_modification", 'open.file.path =~ "/etc/pam.d/*" && opened_for_write'),
    ("nsswitch_conf_mod", 'open.file.path == "/etc/nsswitch.conf" && opened_for_write'),
    ("sudoers_mod", 'open.file.path in ["/etc/sudoers", ~"/etc/sudoers.d/*"] && opened_for_write'),
    ("ssh_authorized_keys", 'open.file.name == "authorized_keys" && opened_for_write'),
    ("cron_mod", 'open.file.path in [~"/etc/cron.d/*", "/etc/crontab", ~"/var/spool/cron/**"] '
     "&& opened_for_write"),
    ("auditd_config_modified", 'open.file.path == "/etc/audit/auditd.conf" && opened_for_write '
     '&& process.file.name != "auditctl"'),
    ("kernel_module_conf", 'open.file.path in [~"/etc/modprobe.d/*", ~"/etc/modules-load.d/*"] '
     "&& opened_for_write"),
    ("ld_preload", 'open.file.path == "/etc/ld.so.preload" && opened_for_write'),
    ("systemd_unit_mod", 'open.file.path in [~"/etc/systemd/system/**", '
     '~"/lib/systemd/system/**"] && opened_for_write && '
     "process.ancestors.file.path not in PACKAGE_MANAGERS"),
    ("passwd_group_mod", 'open.file.path in ["/etc/passwd", "/etc/group"] && opened_for_write'),
    ("docker_socket", 'open.file.path == "/var/run/docker.sock" && '
     'process.comm not in ["dockerd", "containerd", "docker"]'),
    ("proc_mem_access", 'open.file.name == "mem" && open.file.path =~ "/proc/*/mem" && '
     "process.uid != 0"),
    ("kubelet_config", 'open.file.path =~ "/var/lib/kubelet/**" && opened_for_write'),
    ("cloud_credentials", 'open.file.path in [~"/root/.aws/*", ~"/home/*/.aws/*"] && '
     'process.comm not in ["aws"]'),
    # executions
    ("shell_from_web_server", "exec.file.name in SHELLS && process.ancestors.comm in WEB_SERVERS"),
    ("netcat_exec", 'exec.file.name in ["nc", "ncat", "netcat"] && exec.args_flags in ["e", "c"]'),
    ("download_and_run", 'exec.file.name in ["curl", "wget"] && process.parent.comm in SHELLS '
     '&& exec.args =~ "*http*"'),
    ("user_management", 'exec.file.name in ["passwd", "chpasswd", "usermod", "useradd", '
     '"userdel"] && process.ancestors.file.path not in PACKAGE_MANAGERS'),
    ("exec_from_tmp", 'exec.file.path in [~"/tmp/**", ~"/dev/shm/**", ~"/var/tmp/**"]'),
    ("crypto_miner_args", 'exec.args =~ "*stratum+tcp*"'),
    ("kernel_module_tools", 'exec.file.name in ["insmod", "modprobe", "rmmod"] && '
     "process.ancestors.file.path not in PACKAGE_MANAGERS"),
    ("debugger_exec", 'exec.file.name in ["gdb", "strace", "ltrace"] && process.uid != 0'),
    ("base64_decode", 'exec.file.name == "base64" && exec.args_flags in ["d", "decode"]'),
    ("privesc_from_web", 'exec.file.name in ["sudo", "su", "pkexec"] && '
     "process.ancestors.comm in WEB_SERVERS"),
    ("history_tamper", 'exec.file.name in ["shred", "rm"] && exec.args =~ "*_history*"'),
    # attributes, renames, deletions
    ("chmod_suid", "chmod.file.destination.mode & (S_ISUID|S_ISGID) > 0 && "
     "process.ancestors.file.path not in PACKAGE_MANAGERS"),
    ("chmod_critical", "chmod.file.path in BINARIES && "
     "process.ancestors.file.path not in PACKAGE_MANAGERS"),
    ("chown_critical", 'chown.file.path in ["/etc/shadow", "/etc/passwd", "/etc/sudoers"]'),
    ("unlink_logs", 'unlink.file.path =~ "/var/log/**" && process.comm not in ["logrotate"]'),
    ("rename_critical", "rename.file.path in BINARIES && "
     "process.ancestors.file.path not in PACKAGE_MANAGERS"),
    ("unlink_binaries", "unlink.file.path in BINARIES && "
     "process.ancestors.file.path not in PACKAGE_MANAGERS"),
    # network
    ("imds_access", 'connect.addr.ip == 169.254.169.254 && process.comm not in ["cloud-init"]'),
    ("suspicious_port", "connect.addr.port in [4444, 1337, 31337]"),
    ("shell_connect_public", "process.comm in SHELLS && connect.addr.ip not in PRIVATE_NETS"),
    ("bind_low_port_non_root", "bind.addr.port < 1024 && process.uid != 0"),
    # credentials and the kernel
    ("setuid_root", 'setuid.uid == 0 && process.uid != 0 && process.comm not in ["sudo", "su"]'),
    ("ptrace_attach", "ptrace.request in [PTRACE_ATTACH, PTRACE_SEIZE] && process.uid != 0"),
    ("module_load", "load_module.name != \"\" && "
     "process.ancestors.file.path not in PACKAGE_MANAGERS"),
    ("kill_agent", 'signal.type in [SIGKILL, SIGTERM] && '
     'signal.target.file.name in ["security-agent", "system-probe"]'),
    ("process_in_dev_shm", 'process.file.path =~ "/dev/shm/*"'),
]  # fmt: skip

NOISE_PATHS = [
    "/usr/lib/x86_64-linux-gnu/libc.so.6", "/etc/ld.so.cache", "/proc/self/stat",
    "/proc/meminfo", "/etc/hosts", "/etc/resolv.conf", "/etc/localtime", "/var/log/syslog",
    "/usr/share/locale/locale.alias", "/dev/null", "/sys/fs/cgroup/cpu.max", "/etc/passwd",
    "/usr/bin/python3", "/usr/lib/python3/dist-packages/yaml/__init__.py", "/etc/nsswitch.conf",
    "/var/lib/dpkg/status", "/run/systemd/journal/socket", "/usr/bin/bash", "/etc/pam.d/sshd",
]  # fmt: skip
SENSITIVE_PATHS = [
    "/etc/shadow", "/etc/sudoers", "/etc/sudoers.d/admins", "/etc/pam.d/common-auth",
    "/etc/cron.d/backdoor", "/etc/ld.so.preload", "/usr/bin/ls", "/boot/vmlinuz-6.1",
    "/etc/systemd/system/evil.service", "/var/run/docker.sock", "/root/.aws/credentials",
    "/root/.ssh/authorized_keys", "/proc/1/mem", "/var/lib/kubelet/config.yaml",
]  # fmt: skip
COMMS = ["bash", "python3", "nginx", "sshd", "cron", "systemd", "dpkg", "node", "java", "curl"]
EXEC_BINARIES = [
    "/usr/bin/ls", "/usr/bin/cat", "/usr/bin/grep", "/usr/bin/python3", "/usr/bin/bash",
    "/usr/bin/sh", "/usr/bin/curl", "/usr/bin/git", "/usr/sbin/sshd", "/tmp/payload",
    "/usr/bin/base64", "/usr/bin/nc", "/usr/sbin/useradd", "/usr/bin/sudo", "/usr/bin/gdb",
]  # fmt: skip


def _process(rng: random.Random) -> dict[str, Any]:
    def one() -> dict[str, Any]:
        comm = rng.choice(COMMS)
        path = rng.choice(["/usr/bin/", "/usr/sbin/"]) + comm
        return {"pid": rng.randint(2, 60000), "uid": rng.choice([0, 0, 1000, 33]),
                "comm": comm, "file": {"path": path, "name": comm}, "argv": [comm],
                "container": {"id": ""}, "created_at": 1000.0}  # fmt: skip

    proc = one()
    proc["ancestors"] = [one() for _ in range(rng.randint(1, 4))]
    return proc


def _file(path: str, rng: random.Random) -> dict[str, Any]:
    mode = rng.choice([0o100644, 0o100755])
    return {"path": path, "name": path.rsplit("/", 1)[-1], "mode": mode, "uid": 0, "gid": 0,
            "inode": rng.randint(1, 1 << 20)}  # fmt: skip


def _event(rng: random.Random) -> dict[str, Any]:
    kind = rng.choices(
        ["open", "exec", "chmod", "chown", "rename", "unlink", "connect", "bind", "setuid",
         "ptrace", "load_module", "signal", "exit", "fork"],
        [55, 15, 3, 2, 3, 4, 8, 1, 2, 0.5, 0.2, 1, 3, 3],
    )[0]  # fmt: skip
    ev: dict[str, Any] = {"type": kind, "timestamp": 2000.0, "process": _process(rng)}
    sensitive = rng.random() < 0.03
    path = rng.choice(SENSITIVE_PATHS if sensitive else NOISE_PATHS)
    if kind == "open":
        flags = rng.choice([0, 0, 0, 0o2000000, 0o101, 0o1101, 0o2])
        ev["open"] = {"file": _file(path, rng), "flags": flags, "retval": 0}
    elif kind == "exec":
        binary = rng.choice(EXEC_BINARIES)
        name = binary.rsplit("/", 1)[-1]
        argv = [name, *rng.choice([[], ["-l"], ["-d", "x"], ["-e", "/bin/sh"], ["http://x"]])]
        ev["exec"] = {"file": {"path": binary, "name": name}, "argv": argv,
                      "args": " ".join(argv), "comm": name}  # fmt: skip
    elif kind in ("chmod", "chown", "unlink"):
        ev[kind] = {"file": _file(path, rng), "retval": 0}
        if kind == "chmod":
            ev[kind]["file"]["destination"] = {"mode": rng.choice([0o644, 0o755, 0o4755])}
    elif kind == "rename":
        ev[kind] = {"file": {**_file(path, rng), "destination": _file(path + ".new", rng)}}
    elif kind in ("connect", "bind"):
        ip = rng.choice(["10.0.0.5", "127.0.0.1", "93.184.216.34", "169.254.169.254", "::1"])
        ev[kind] = {"addr": {"ip": ip, "port": rng.choice([80, 443, 53, 4444, 8080]),
                             "family": 10 if ":" in ip else 2}}  # fmt: skip
    elif kind == "setuid":
        ev[kind] = {"uid": rng.choice([0, 1000]), "euid": 0}
    elif kind == "ptrace":
        ev[kind] = {"request": rng.choice([16, 0x4206, 12])}
    elif kind == "load_module":
        ev[kind] = {"name": rng.choice(["nf_tables", "evil"])}
    elif kind == "signal":
        target = {"file": {"name": rng.choice(["bash", "security-agent"])}}
        ev[kind] = {"type": rng.choice([9, 15, 1]), "pid": 5, "target": target}
    elif kind == "exit":
        ev[kind] = {"code": 0}
    return ev


def _rate(fn: Any, events: list[dict[str, Any]]) -> tuple[float, float, int]:
    """Events per CPU second, events per wall-clock second and total matches for one pass.

    CPU time is the figure that means "on one core" on a shared machine; the evaluation is
    single-threaded, so the process CPU time is this loop's."""
    matches = 0
    c0, t0 = time.process_time(), time.perf_counter()
    for ev in events:
        matches += len(fn(ev))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return len(events) / cpu, len(events) / wall, matches


_STRING = re.compile(r'([~r]?)"([^"]*)"')


def _vary(m: re.Match[str], k: int) -> str:
    """Suffix plain strings (patterns and regexes keep their meaning)."""
    prefix, text = m.group(1), m.group(2)
    return m.group(0) if prefix or not text else f'"{text}.v{k}"'


def _scaled_rules(copies: int) -> list[tuple[str, str]]:
    """``copies`` variants of every rule, each with its string constants suffixed so the
    variants watch other files and programs: the shape of a large policy (Datadog's default
    policy has hundreds of rules), where most rules rarely match."""
    out = list(RULES)
    for k in range(1, copies):
        for rule_id, expression in RULES:
            varied = _STRING.sub(functools.partial(_vary, k=k), expression)
            out.append((f"{rule_id}_v{k}", varied))
    return out


def _measure(
    name: str, rule_defs: list[tuple[str, str]], pool: list[dict[str, Any]], n_events: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    rules = RuleSet.compile([RuleDefinition(i, e) for i, e in rule_defs], MACROS)
    compile_ms = (time.perf_counter() - t0) * 1000
    if rules.errors or rules.macro_errors:
        raise RuntimeError(f"benchmark rules do not compile: {rules.errors} {rules.macro_errors}")
    for ev in pool:  # the three paths must agree before any timing means anything
        expected = rules.evaluate_every_rule(ev)
        if rules.evaluate(ev) != expected or rules.evaluate_all(ev) != expected:
            raise RuntimeError(f"indexed and brute-force results differ on {ev}")
    events = [pool[i % len(pool)] for i in range(n_events)]
    indexed, indexed_wall, indexed_matches = _rate(rules.evaluate, events)
    brute, brute_wall, brute_matches = _rate(rules.evaluate_every_rule, events)
    buckets, _, bucket_matches = _rate(rules.evaluate_all, events)
    if not indexed_matches == brute_matches == bucket_matches:
        raise RuntimeError("match counts differ between evaluation paths")
    return {
        "name": name,
        "unit": "events per CPU second",
        "value": round(indexed),
        "baseline": round(brute),
        "baseline_name": "every rule of the event's type on every event (evaluate_every_rule)",
        "ratio": round(indexed / brute, 1),
        "type_buckets_only": round(buckets),
        "wall_clock_events_per_second": round(indexed_wall),
        "wall_clock_baseline": round(brute_wall),
        "events": n_events,
        "distinct_events": len(pool),
        "rules": len(rules.rules),
        "matches": indexed_matches,
        "compile_ms": round(compile_ms, 1),
        "target": ">= 500000 events/s and >= 20x the baseline",
    }


def run(n_events: int = N_EVENTS, pool_size: int = POOL) -> list[dict[str, Any]]:
    rng = random.Random(20261124)
    pool = [_event(rng) for _ in range(pool_size)]
    return [
        _measure("secl.evaluate.events_per_second", RULES, pool, n_events),
        _measure(
            "secl.evaluate.events_per_second_210_rules", _scaled_rules(5), pool, n_events // 5
        ),
    ]


if __name__ == "__main__":
    import json

    for result in run():
        print(json.dumps(result))
