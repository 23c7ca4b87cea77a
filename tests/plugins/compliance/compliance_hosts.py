"""Helpers for the compliance tests: a host root in tmp_path that passes the shipped baseline."""

from __future__ import annotations

import os
from pathlib import Path

SHADOW_GID = 42

GOOD_SYSCTL = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "kernel.randomize_va_space": "2",
    "fs.suid_dumpable": "0",
}


class HostRoot:
    """A fake host filesystem; ``write`` sets content, mode and owner like the real files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    def write(
        self, host_path: str, content: str = "", mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> Path:
        p = self.path(host_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        os.chown(p, uid, gid)
        os.chmod(p, mode)
        return p

    def mkdir(self, host_path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Path:
        p = self.path(host_path)
        p.mkdir(parents=True, exist_ok=True)
        os.chown(p, uid, gid)
        os.chmod(p, mode)
        return p

    def remove(self, host_path: str) -> None:
        p = self.path(host_path)
        if p.is_dir():
            import shutil

            shutil.rmtree(p)
        else:
            p.unlink()

    def chmod(self, host_path: str, mode: int) -> None:
        os.chmod(self.path(host_path), mode)

    def chown(self, host_path: str, uid: int, gid: int) -> None:
        os.chown(self.path(host_path), uid, gid)

    def sysctl(self, key: str, value: str) -> None:
        self.write("/proc/sys/" + key.replace(".", "/"), value + "\n")


def build_good_host(root: Path) -> HostRoot:
    """A host on which every rule of the linux-baseline benchmark passes."""
    h = HostRoot(root)
    passwd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    group = f"root:x:0:\ndaemon:x:1:\nshadow:x:{SHADOW_GID}:\n"
    shadow = "root:$y$j9T$abc$def:19000:1:365:7:::\ndaemon:*:19000:0:99999:7:::\n"
    for name, text in (("passwd", passwd), ("group", group)):
        h.write(f"/etc/{name}", text, 0o644)
        h.write(f"/etc/{name}-", text, 0o644)
    for name, text in (("shadow", shadow), ("gshadow", "root:*::\nshadow:*::\n")):
        h.write(f"/etc/{name}", text, 0o640, gid=SHADOW_GID)
        h.write(f"/etc/{name}-", text, 0o600)
    h.mkdir("/etc/ssh/sshd_config.d")
    h.write(
        "/etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nMaxAuthTries 4\n"
        "X11Forwarding no\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
        0o600,
    )
    for key, value in GOOD_SYSCTL.items():
        h.sysctl(key, value)
    h.write(
        "/etc/sysctl.d/60-hardening.conf",
        "".join(f"{k} = {v}\n" for k, v in GOOD_SYSCTL.items()),
    )
    h.write(
        "/etc/login.defs",
        "# shadow password suite\nPASS_MAX_DAYS\t365\nPASS_MIN_DAYS\t1\nPASS_WARN_AGE\t7\n"
        "ENCRYPT_METHOD YESCRYPT\nUMASK 027\n",
    )
    h.write("/etc/crontab", "17 * * * * root cd / && run-parts /etc/cron.hourly\n", 0o600)
    for d in ("/etc/cron.d", "/etc/cron.daily", "/etc/cron.hourly"):
        h.mkdir(d, 0o700)
    h.write("/etc/cron.allow", "root\n", 0o640)
    h.mkdir("/tmp", 0o1777)
    h.write("/usr/bin/ls", "#!/bin/true\n", 0o755)
    h.mkdir("/usr/local/bin", 0o755)
    h.write(
        "/var/lib/dpkg/status",
        "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\nArchitecture: amd64\n\n"
        "Package: telnet\nStatus: deinstall ok config-files\nVersion: 0.17+2.4-2\n"
        "Architecture: all\n",
    )
    h.write(
        "/etc/audit/auditd.conf",
        "log_file = /var/log/audit/audit.log\nmax_log_file_action = keep_logs\n",
        0o640,
    )
    h.write("/etc/os-release", 'ID=debian\nVERSION_ID="12"\nNAME="Debian GNU/Linux"\n')
    return h
