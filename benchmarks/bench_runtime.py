"""Runtime security: one million mixed kernel events replayed through the shipped default
policy, as the plugin loads it (``policy_loader``) and evaluates it (``plugins.secl``), with
the approver indexes against evaluating every rule on every event in the same run; plus the
plugin's whole engine path (evaluation, ``every``, security event building) for reference.

Events come from a seeded pool of 20 000 distinct events, replayed in order. The mix follows
what a host produces: file opens dominate (60 %, mostly reads), then exec (15 %), fork/exit
(10 %), other file operations (9 %), connect (5 %) and credential changes (1 %); about 1 % of
them touch something a rule looks for. The brute-force baseline runs on a slice of the same stream
(it is slow) and is reported per second; both paths must agree on every event of the slice.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_rs_sources import RATE, exec_load

from plugins.runtime_security.actions import ActionRunner
from plugins.runtime_security.engine import RuleEngine
from plugins.runtime_security.policy_loader import load_policies, policy_files

REPO = Path(__file__).resolve().parents[1]
N_EVENTS = 1_000_000
BASELINE_EVENTS = 100_000
POOL = 20_000

NOISE_PATHS = [
    "/usr/lib/x86_64-linux-gnu/libc.so.6", "/etc/ld.so.cache", "/proc/self/stat",
    "/etc/hosts", "/etc/resolv.conf", "/etc/localtime", "/var/log/syslog", "/dev/null",
    "/usr/share/locale/locale.alias", "/etc/nsswitch.conf", "/var/lib/dpkg/status",
    "/usr/bin/python3", "/etc/pam.d/sshd", "/etc/passwd", "/home/alice/notes.txt",
]  # fmt: skip
# What chmod, unlink, rename and chown usually touch: ordinary files, not system ones.
NOISE_FILES = ["/home/alice/build/out.o", "/var/cache/app/item", "/srv/www/index.html",
               "/var/lib/app/state.db", "/home/bob/.cache/pip/x"]  # fmt: skip
SENSITIVE_PATHS = [
    "/etc/shadow", "/etc/sudoers", "/etc/sudoers.d/admins", "/etc/pam.d/common-auth",
    "/etc/cron.d/job", "/etc/ld.so.preload", "/usr/bin/ls", "/boot/vmlinuz-6.1",
    "/etc/systemd/system/x.service", "/root/.ssh/authorized_keys", "/etc/ssh/sshd_config",
]  # fmt: skip
PROGRAMS = [
    "/usr/bin/ls", "/usr/bin/cat", "/usr/bin/python3", "/usr/bin/dpkg", "/usr/bin/curl",
    "/usr/sbin/nginx", "/usr/bin/sleep", "/usr/bin/grep", "/usr/lib/systemd/systemd-journald",
    "/usr/sbin/cron", "/usr/bin/git", "/usr/bin/make",
]  # fmt: skip
SUSPICIOUS_PROGRAMS = ["/usr/bin/bash", "/usr/bin/nmap", "/tmp/payload", "/usr/sbin/useradd"]
SUSPICIOUS = 0.01  # the share of events a rule should match: noise dominates real streams


def _process(rng: random.Random, pid: int) -> dict[str, Any]:
    path = rng.choice(SUSPICIOUS_PROGRAMS if rng.random() < SUSPICIOUS else PROGRAMS)
    parent = rng.choice(SUSPICIOUS_PROGRAMS if rng.random() < SUSPICIOUS else PROGRAMS)
    name = path.rsplit("/", 1)[1]
    return {
        "pid": pid, "ppid": pid - 1, "uid": rng.choice([0, 1000, 1000]), "gid": 0, "comm": name,
        "user": "root", "file": {"path": path, "name": name}, "argv": ["-l"], "args": "-l",
        "container": {"id": ""},
        "ancestors": [{"pid": pid - 1, "comm": parent.rsplit("/", 1)[1],
                       "file": {"path": parent, "name": parent.rsplit("/", 1)[1]}}],
    }  # fmt: skip


def _file(path: str, mode: int = 0o100644) -> dict[str, Any]:
    return {"path": path, "name": path.rsplit("/", 1)[1], "mode": mode}


def make_event(rng: random.Random, i: int) -> dict[str, Any]:  # noqa: PLR0911 - one per type
    proc = _process(rng, 1000 + i % 5000)
    roll = rng.random()
    sensitive = rng.random() < SUSPICIOUS
    path = rng.choice(SENSITIVE_PATHS if sensitive else NOISE_PATHS)
    base: dict[str, Any] = {"timestamp": 1.7e9 + i, "process": proc}
    if roll < 0.6:
        # Reads dominate real streams; writes are mostly to ordinary files.
        writes = sensitive or rng.random() < SUSPICIOUS
        flags = rng.choice([0o1, 0o101, 0o1102]) if writes else rng.choice([0, 0o2000000])
        return {**base, "type": "open", "open": {"file": _file(path), "flags": flags, "retval": 0}}
    if roll < 0.75:
        return {**base, "type": "exec", "exec": {k: v for k, v in proc.items() if k != "ancestors"}}
    if roll < 0.85:
        return {**base, "type": rng.choice(["fork", "exit"])}
    if roll < 0.88:
        mode = 0o4755 if rng.random() < SUSPICIOUS else rng.choice([0o644, 0o755])
        path = path if sensitive else rng.choice(NOISE_FILES)
        return {
            **base,
            "type": "chmod",
            "chmod": {"file": {**_file(path), "destination": {"mode": mode}}, "retval": 0},
        }
    if not sensitive:
        path = rng.choice(NOISE_FILES)
    if roll < 0.91:
        return {**base, "type": "unlink", "unlink": {"file": _file(path), "retval": 0}}
    if roll < 0.93:
        return {**base, "type": "rename", "rename": {"file": {**_file(path),
                "destination": _file(path + ".new")}, "retval": 0}}  # fmt: skip
    if roll < 0.94:
        return {**base, "type": "chown", "chown": {"file": {**_file(path),
                "destination": {"uid": 0, "gid": 0}}, "retval": 0}}  # fmt: skip
    if roll < 0.99:
        ip = rng.choice(["127.0.0.1", "10.1.2.3", "93.184.216.34"])
        ip = "169.254.169.254" if rng.random() < SUSPICIOUS else ip
        return {**base, "type": "connect", "connect": {"addr": {"ip": ip, "port": 443,
                "family": 2}, "retval": 0}}  # fmt: skip
    uid = 0 if rng.random() < SUSPICIOUS else proc["uid"]
    return {**base, "type": "setuid", "setuid": {"uid": uid, "retval": 0}}


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def run() -> list[dict[str, Any]]:
    policies = load_policies(policy_files("/nonexistent"), agent_version="0.1.0", facts={})
    ruleset = policies.ruleset
    rng = random.Random(5)
    pool = [make_event(rng, i) for i in range(POOL)]
    stream = [pool[i % POOL] for i in range(N_EVENTS)]

    start = time.process_time()
    matched = 0
    evaluate = ruleset.evaluate
    for event in stream:
        if evaluate(event):
            matched += 1
    indexed = time.process_time() - start

    start = time.process_time()
    every = ruleset.evaluate_every_rule
    baseline_matches = [every(event) for event in stream[:BASELINE_EVENTS]]
    brute = time.process_time() - start
    for event, expected in zip(stream[:BASELINE_EVENTS], baseline_matches, strict=True):
        if evaluate(event) != expected:
            raise AssertionError(f"approver path disagrees with every-rule path on {event}")

    sent: list[int] = [0]

    def count(_track: str, _event: dict[str, Any]) -> None:
        sent[0] += 1

    engine = RuleEngine(policies, ActionRunner(None, 1 << 20), count, time.monotonic,
                        agent_version="0.1.0", hostname="bench")  # fmt: skip
    start = time.process_time()
    for event in stream:
        engine.handle(event)
    engine_time = time.process_time() - start

    indexed_rate = _rate(N_EVENTS, indexed)
    brute_rate = _rate(BASELINE_EVENTS, brute)
    rows = [
        {
            "name": "runtime_default_policy_events_per_second",
            "unit": "events/s",
            "value": round(indexed_rate),
            "baseline": round(brute_rate),
            "baseline_name": "every rule on every event",
            "speedup": round(indexed_rate / brute_rate, 1),
            "events": N_EVENTS,
            "rules": len(policies.loaded),
            "matched_events": matched,
        },
        {
            "name": "runtime_engine_events_per_second",
            "unit": "events/s",
            "value": round(_rate(N_EVENTS, engine_time)),
            "baseline": round(indexed_rate),
            "baseline_name": "rule evaluation alone",
            "security_events": sent[0],
        },
    ]
    return rows + run_daemon()


# -- the plugin in the real daemon ------------------------------------------------------------

READY = "runtime security self-test succeeded"
RUNNING = "Security Agent is now running."


def _tool() -> list[str]:
    beside = Path(sys.executable).parent / "security-agent"
    found = str(beside) if beside.exists() else shutil.which("security-agent")
    if found is None:
        raise RuntimeError("security-agent is not installed next to this python nor on PATH")
    return [found]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system time of every thread of ``pid`` (fields 14 and 15 of /proc/pid/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited ({proc.returncode}) before logging {text!r}")
        time.sleep(0.1)
    raise RuntimeError(f"the daemon did not log {text!r} within {timeout:g}s")


def _daemon_run(root: Path, sources: bool, seconds: float) -> dict[str, Any]:
    """Start the daemon, load it with execs, return its CPU and runtime status."""
    root.mkdir()
    policies = root / "policies"  # empty: the shipped default policy only
    policies.mkdir()
    cfg = root / "security-agent.yaml"
    cfg.write_text(
        "run_path: run\n"
        "security_agent:\n"
        f"  cmd_port: {_free_port()}\n"
        "  expvar_port: 0\n"
        "  log_file: run/log/security-agent.log\n"
        "runtime_security_config:\n"
        "  enabled: true\n"
        f"  policies:\n    dir: {policies}\n"
    )
    if not sources:  # the daemon exits when no security component runs: keep the plugin
        text = cfg.read_text()
        cfg.write_text(
            text + "  self_test:\n    enabled: false\n"
            "  sources:\n    process: false\n    file: false\n    audit: false\n"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["PYTHONPATH"] = str(REPO)
    env["HOME"] = str(root)
    log = root / "run" / "log" / "security-agent.log"
    proc = subprocess.Popen(
        [*_tool(), "start", "-c", str(cfg)],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(log, READY if sources else RUNNING, proc, 60.0)
        time.sleep(1.0)  # start-up (cache seeding, self-test) is not the steady state
        cpu0, wall0 = _cpu_seconds(proc.pid), time.monotonic()
        exec_rate = exec_load(seconds)
        time.sleep(0.5)  # let the sources drain the tail of the load
        cpu, wall = _cpu_seconds(proc.pid) - cpu0, time.monotonic() - wall0
        out = subprocess.run(
            [*_tool(), "-c", str(cfg), "status", "-j"],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        # The CLI prints a "Getting the status" line before the JSON document.
        status: dict[str, Any] = json.loads(out[out.index("{") :])["sections"][
            "runtimeSecurityStatus"
        ]["data"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"cpu_percent": 100.0 * cpu / wall, "exec_per_s": exec_rate, "status": status}


def run_daemon(seconds: float | None = None) -> list[dict[str, Any]]:
    """The source-overhead rows: the runtime plugin in a real daemon under 1,000 exec/s."""
    if seconds is None:
        seconds = float(os.environ.get("RS_DAEMON_BENCH_SECONDS", "30"))
    with tempfile.TemporaryDirectory(prefix="rs-daemon-bench-") as tmp:
        baseline = _daemon_run(Path(tmp) / "off", False, seconds)
        measured = _daemon_run(Path(tmp) / "on", True, seconds)
    status = measured["status"]
    sources = {s["name"]: s for s in status.get("sources", [])}
    return [
        {
            "name": "runtime_security.daemon.cpu_at_1k_exec_per_s",
            "unit": "% of one core",
            "value": round(measured["cpu_percent"], 2),
            "baseline": round(baseline["cpu_percent"], 2),
            "baseline_name": "the same daemon, plugin loaded with no kernel source, same load",
            "overhead": round(measured["cpu_percent"] - baseline["cpu_percent"], 2),
            "exec_per_s": round(measured["exec_per_s"], 1),
            "target_exec_per_s": RATE,
            "seconds": seconds,
            "events_received": status.get("eventReceived"),
            "events_by_type": status.get("eventsByType"),
            "security_events_sent": status.get("eventSent"),
            "drops": status.get("drops"),
            "process_resolved_late": status.get("processResolvedLate"),
            "process_unresolved": status.get("processUnresolved"),
            "drops_by_source": {name: s["drops"] for name, s in sources.items()},
            "inactive_sources": [
                f"{name}: {s.get('reason', '')}" for name, s in sources.items() if not s["active"]
            ],
            "rules": sum(
                1
                for p in status.get("policiesStatus", [])
                for r in p["Status"]
                if r["Status"] == "loaded"
            ),
            "target": "< 10 % of one core, 0 drops",
            "ok": measured["cpu_percent"] < 10.0 and status.get("drops") == 0,
        }
    ]


if __name__ == "__main__":
    for result in run():
        print(json.dumps(result))
