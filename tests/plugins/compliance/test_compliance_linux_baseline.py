"""Every rule of the shipped linux-baseline benchmark, on a passing and a failing host root.

As ComplianceAsCode does for its checks, each scenario starts from a host on which every rule
passes (conftest.build_good_host) and changes one thing.
"""

from __future__ import annotations

import os

import pytest
from compliance_hosts import SHADOW_GID, build_good_host

from plugins.compliance.benchmark import load_benchmark
from plugins.compliance.checker import Checker
from plugins.compliance.environment import HostEnv
from plugins.compliance.service import builtin_benchmarks_dir

BENCH = load_benchmark(os.path.join(builtin_benchmarks_dir(), "linux-baseline.yaml"))
P = "linux-baseline-"


def evaluate(root, rule_id):
    env = HostEnv(hostname="test-host", host_root=str(root))
    env.proc_root = str(root / "proc")
    rule = next(r for r in BENCH.rules if r.id == P + rule_id)
    findings = Checker(env, "7.99.0", 1200).findings(BENCH, rule)
    return [(f.result, f.resource_type, f.resource_id) for f in findings], findings


def perm_scenarios(rule, path, bad_mode, *, bad_owner=(1, 0), skipped_when_missing=False):
    out = [
        (rule, "correct", None, [("passed", "file", path)]),
        (rule, f"mode_{bad_mode:o}", lambda h: h.chmod(path, bad_mode), [("failed", "file", path)]),
        (rule, "wrong_owner", lambda h: h.chown(path, *bad_owner), [("failed", "file", path)]),
    ]
    missing = ("skipped", "file", path) if skipped_when_missing else ("failed", "file", path)
    out.append((rule, "missing", lambda h: h.remove(path), [missing]))
    return out


def sysctl_scenarios(rule, key, good, bad):
    conf = "/etc/sysctl.d/60-hardening.conf"

    def wrong_persistent(h):
        h.write("/usr/lib/sysctl.d/10-vendor.conf", "")  # ignored (no such key)
        h.write("/etc/sysctl.d/99-override.conf", f"{key}={bad}\n")

    def overridden_vendor(h):
        h.write("/usr/lib/sysctl.d/50-vendor.conf", f"{key} = {bad}\n")
        h.write("/etc/sysctl.d/50-vendor.conf", f"{key} = {good}\n")

    def slash_form(h):
        h.write(conf, f"{key.replace('.', '/')} = {good}\n")

    def only_runtime(h):
        h.remove(conf)

    return [
        (rule, "correct_value", None, [("passed", "sysctl", key)]),
        (rule, "slash_notation", slash_form, [("passed", "sysctl", key)]),
        (rule, "vendor_file_overridden_in_etc", overridden_vendor, [("passed", "sysctl", key)]),
        (rule, "wrong_runtime", lambda h: h.sysctl(key, bad), [("failed", "sysctl", key)]),
        (rule, "conflicting_persistent", wrong_persistent, [("failed", "sysctl", key)]),
        (
            rule,
            "sysctl_conf_wrong",
            lambda h: h.write("/etc/sysctl.conf", f"{key}={bad}\n"),
            [("failed", "sysctl", key)],
        ),
        (rule, "runtime_only", only_runtime, [("failed", "sysctl", key)]),
    ]


def sshd_scenarios(rule, keyword, good_line, bad_line, failing_by_default):
    cfg = "/etc/ssh/sshd_config"
    res = ("sshd_config", cfg)

    def set_line(line):
        def apply(h):
            text = "\n".join(
                line
                for line in h.path(cfg).read_text().splitlines()
                if not line.lower().startswith(keyword)
            )
            h.write(cfg, text + "\n" + line + "\n", 0o600)

        return apply

    def include_first(h):
        # sshd keeps the first value: an included file read before the main line wins.
        set_line(good_line)(h)
        h.write("/etc/ssh/sshd_config.d/50-cloud.conf", bad_line + "\n")

    def after_match(h):
        set_line(good_line)(h)
        h.write(cfg, h.path(cfg).read_text() + "Match User backup\n  " + bad_line + "\n", 0o600)

    scenarios = [
        (rule, "set_correctly", set_line(good_line), [("passed", *res)]),
        (rule, "set_wrong", set_line(bad_line), [("failed", *res)]),
        (rule, "wrong_in_include", include_first, [("failed", *res)]),
        (rule, "wrong_only_in_match_block", after_match, [("passed", *res)]),
        (rule, "no_sshd", lambda h: h.remove("/etc/ssh"), [("skipped", *res)]),
    ]
    default = ("failed" if failing_by_default else "passed", *res)
    scenarios.append((rule, "unset_uses_default", set_line(""), [default]))
    return scenarios


def set_login_def(key, value):
    def apply(h):
        lines = [
            line
            for line in h.path("/etc/login.defs").read_text().splitlines()
            if not line.startswith(key)
        ]
        h.write("/etc/login.defs", "\n".join([*lines, f"{key}\t{value}"]) + "\n")

    return apply


def login_defs_scenarios(rule, key, good, bad):
    def last_wins(h):
        set_login_def(key, good)(h)
        h.write("/etc/login.defs", h.path("/etc/login.defs").read_text() + f"{key} {bad}\n")

    def only_commented(h):
        h.write("/etc/login.defs", f"#{key} {good}\n")

    res = ("login_defs", key)
    return [
        (rule, "correct", set_login_def(key, good), [("passed", *res)]),
        (rule, "wrong", set_login_def(key, bad), [("failed", *res)]),
        (rule, "later_line_wins", last_wins, [("failed", *res)]),
        (rule, "commented", only_commented, [("failed", *res)]),
        (rule, "no_login_defs", lambda h: h.remove("/etc/login.defs"), [("failed", *res)]),
    ]


def add_uid0(h):
    h.write("/etc/passwd", h.path("/etc/passwd").read_text() + "toor:x:0:0::/root:/bin/sh\n")


def empty_password(h):
    h.write(
        "/etc/shadow",
        h.path("/etc/shadow").read_text() + "guest::19000:0:99999:7:::\n",
        0o640,
        gid=SHADOW_GID,
    )


def shadow_member(h):
    h.write(
        "/etc/group",
        h.path("/etc/group")
        .read_text()
        .replace(f"shadow:x:{SHADOW_GID}:", f"shadow:x:{SHADOW_GID}:daemon"),
    )


def install_telnet(h):
    status = h.path("/var/lib/dpkg/status").read_text()
    h.write(
        "/var/lib/dpkg/status", status.replace("deinstall ok config-files", "install ok installed")
    )


SCENARIOS = [
    *perm_scenarios("passwd-permissions", "/etc/passwd", 0o664),
    *perm_scenarios("passwd-backup-permissions", "/etc/passwd-", 0o646, skipped_when_missing=True),
    *perm_scenarios("shadow-permissions", "/etc/shadow", 0o644),
    *perm_scenarios(
        "shadow-backup-permissions",
        "/etc/shadow-",
        0o660,
        bad_owner=(0, 1),
        skipped_when_missing=True,
    ),
    *perm_scenarios("group-permissions", "/etc/group", 0o666),
    *perm_scenarios("group-backup-permissions", "/etc/group-", 0o744, skipped_when_missing=True),
    *perm_scenarios("gshadow-permissions", "/etc/gshadow", 0o650),
    *perm_scenarios(
        "gshadow-backup-permissions", "/etc/gshadow-", 0o604, skipped_when_missing=True
    ),
    *perm_scenarios(
        "sshd-config-permissions", "/etc/ssh/sshd_config", 0o644, skipped_when_missing=True
    ),
    *perm_scenarios("crontab-permissions", "/etc/crontab", 0o644, skipped_when_missing=True),
    ("only-root-uid0", "only_root", None, [("passed", "file", "/etc/passwd")]),
    ("only-root-uid0", "second_uid0", add_uid0, [("failed", "file", "/etc/passwd")]),
    ("shadow-no-empty-password", "all_locked_or_set", None, [("passed", "file", "/etc/shadow")]),
    (
        "shadow-no-empty-password",
        "empty_field",
        empty_password,
        [("failed", "file", "/etc/shadow")],
    ),
    ("shadow-group-empty", "no_members", None, [("passed", "group", "shadow")]),
    ("shadow-group-empty", "member", shadow_member, [("failed", "group", "shadow")]),
    *sshd_scenarios(
        "sshd-permit-root-login",
        "permitrootlogin",
        "PermitRootLogin no",
        "PermitRootLogin yes",
        True,
    ),
    *sshd_scenarios(
        "sshd-max-auth-tries", "maxauthtries", "MaxAuthTries 3", "MaxAuthTries 5", True
    ),
    *sshd_scenarios(
        "sshd-permit-empty-passwords",
        "permitemptypasswords",
        "PermitEmptyPasswords no",
        "PermitEmptyPasswords yes",
        False,
    ),
    *sshd_scenarios(
        "sshd-x11-forwarding", "x11forwarding", "X11Forwarding no", "X11Forwarding yes", False
    ),
    *sshd_scenarios(
        "sshd-hostbased-authentication",
        "hostbasedauthentication",
        "HostbasedAuthentication no",
        "HostbasedAuthentication yes",
        False,
    ),
    *sshd_scenarios(
        "sshd-ignore-rhosts", "ignorerhosts", "IgnoreRhosts yes", "IgnoreRhosts=no", False
    ),
    *sysctl_scenarios("sysctl-ip-forward", "net.ipv4.ip_forward", "0", "1"),
    *sysctl_scenarios("sysctl-send-redirects", "net.ipv4.conf.all.send_redirects", "0", "1"),
    *sysctl_scenarios("sysctl-accept-redirects", "net.ipv4.conf.all.accept_redirects", "0", "1"),
    *sysctl_scenarios(
        "sysctl-accept-source-route", "net.ipv4.conf.all.accept_source_route", "0", "1"
    ),
    *sysctl_scenarios("sysctl-tcp-syncookies", "net.ipv4.tcp_syncookies", "1", "0"),
    *sysctl_scenarios(
        "sysctl-icmp-echo-ignore-broadcasts", "net.ipv4.icmp_echo_ignore_broadcasts", "1", "0"
    ),
    *sysctl_scenarios("sysctl-aslr", "kernel.randomize_va_space", "2", "1"),
    *sysctl_scenarios("sysctl-suid-dumpable", "fs.suid_dumpable", "0", "2"),
    *login_defs_scenarios("login-defs-pass-max-days", "PASS_MAX_DAYS", "90", "99999"),
    (
        "login-defs-pass-max-days",
        "zero",
        set_login_def("PASS_MAX_DAYS", "0"),
        [("failed", "login_defs", "PASS_MAX_DAYS")],
    ),
    *login_defs_scenarios("login-defs-pass-min-days", "PASS_MIN_DAYS", "1", "0"),
    *login_defs_scenarios("login-defs-pass-warn-age", "PASS_WARN_AGE", "14", "3"),
    *login_defs_scenarios("login-defs-encrypt-method", "ENCRYPT_METHOD", "SHA512", "MD5"),
    (
        "cron-directories-permissions",
        "all_700",
        None,
        [("passed", "file", d) for d in ("/etc/cron.d", "/etc/cron.daily", "/etc/cron.hourly")],
    ),
    (
        "cron-directories-permissions",
        "daily_755",
        lambda h: h.chmod("/etc/cron.daily", 0o755),
        [
            ("passed", "file", "/etc/cron.d"),
            ("failed", "file", "/etc/cron.daily"),
            ("passed", "file", "/etc/cron.hourly"),
        ],
    ),
    (
        "cron-directories-permissions",
        "no_cron",
        lambda h: [h.remove(d) for d in ("/etc/cron.d", "/etc/cron.daily", "/etc/cron.hourly")],
        [("skipped", "file", "/etc/cron.*")],
    ),
    ("world-writable-system-files", "none", None, [("passed", "host", "test-host")]),
    (
        "world-writable-system-files",
        "world_writable_binary",
        lambda h: h.chmod("/usr/bin/ls", 0o757),
        [("failed", "file", "/usr/bin/ls")],
    ),
    (
        "world-writable-system-files",
        "world_writable_dir_without_sticky",
        lambda h: h.mkdir("/etc/spool", 0o777),
        [("failed", "file", "/etc/spool")],
    ),
    (
        "world-writable-system-files",
        "sticky_dir_is_fine",
        lambda h: h.mkdir("/etc/spool", 0o1777),
        [("passed", "host", "test-host")],
    ),
    (
        "world-writable-system-files",
        "dangling_symlink_is_fine",
        lambda h: os.symlink("/nonexistent", h.path("/etc/dangling")),
        [("passed", "host", "test-host")],
    ),
    ("tmp-sticky-bit", "sticky", None, [("passed", "file", "/tmp")]),
    (
        "tmp-sticky-bit",
        "not_sticky",
        lambda h: h.chmod("/tmp", 0o777),
        [("failed", "file", "/tmp")],
    ),
    ("legacy-clients-not-installed", "none_installed", None, [("passed", "host", "test-host")]),
    (
        "legacy-clients-not-installed",
        "telnet_installed",
        install_telnet,
        [("failed", "package", "telnet")],
    ),
    ("auditd-keep-logs", "keep_logs", None, [("passed", "file", "/etc/audit/auditd.conf")]),
    (
        "auditd-keep-logs",
        "rotate",
        lambda h: h.write("/etc/audit/auditd.conf", "max_log_file_action = ROTATE\n"),
        [("failed", "file", "/etc/audit/auditd.conf")],
    ),
    (
        "auditd-keep-logs",
        "no_auditd",
        lambda h: h.remove("/etc/audit"),
        [("failed", "file", "/etc/audit/auditd.conf")],
    ),
]


@pytest.mark.parametrize(
    ("rule_id", "mutate", "expected"),
    [pytest.param(r, m, e, id=f"{r}:{name}") for r, name, m, e in SCENARIOS],
)
def test_compliance_baseline_rule(tmp_path, rule_id, mutate, expected):
    host = build_good_host(tmp_path / "host")
    if mutate is not None:
        mutate(host)
    got, findings = evaluate(host.root, rule_id)
    assert got == expected, findings


def test_compliance_baseline_every_rule_has_pass_and_fail_scenarios():
    covered: dict[str, set[str]] = {}
    for rule_id, _name, _mutate, expected in SCENARIOS:
        covered.setdefault(P + rule_id, set()).update(e[0] for e in expected)
    covered[P + "audit-identity-watches"] = {
        "passed",
        "failed",
    }  # kernel test, test_compliance_audit.py
    assert len(BENCH.rules) >= 25
    for rule in BENCH.rules:
        assert {"passed", "failed"} <= covered.get(rule.id, set()), rule.id


def test_compliance_baseline_finding_data(tmp_path):
    host = build_good_host(tmp_path / "host")
    host.chmod("/etc/shadow", 0o644)
    _got, findings = evaluate(host.root, "shadow-permissions")
    assert findings[0].data == {
        "path": "/etc/shadow",
        "permissions": "644",
        "user": "root",
        "group": "shadow",
        "max_permissions": "640",
    }
    host.sysctl("net.ipv4.ip_forward", "1")
    _got, findings = evaluate(host.root, "sysctl-ip-forward")
    assert findings[0].data == {
        "key": "net.ipv4.ip_forward",
        "expected": "0",
        "runtime": "1",
        "persistent": ["/etc/sysctl.d/60-hardening.conf: 0"],
    }
