"""Named integer constants usable in expressions (Linux x86-64 values).

They mirror the kernel headers (``fcntl.h``, ``stat.h``, ``signal.h``, ``socket.h``,
``ptrace.h``, ``errno.h``) so rules read like Datadog's: ``open.flags & O_CREAT > 0``,
``chmod.file.destination.mode & S_IXUSR > 0``, ``signal.type == SIGKILL``.
"""

from __future__ import annotations

OPEN_FLAGS: dict[str, int] = {
    "O_RDONLY": 0o0, "O_WRONLY": 0o1, "O_RDWR": 0o2, "O_CREAT": 0o100, "O_EXCL": 0o200,
    "O_NOCTTY": 0o400, "O_TRUNC": 0o1000, "O_APPEND": 0o2000, "O_NONBLOCK": 0o4000,
    "O_DSYNC": 0o10000, "O_SYNC": 0o4010000, "O_DIRECT": 0o40000, "O_LARGEFILE": 0o100000,
    "O_DIRECTORY": 0o200000, "O_NOFOLLOW": 0o400000, "O_NOATIME": 0o1000000,
    "O_CLOEXEC": 0o2000000, "O_PATH": 0o10000000, "O_TMPFILE": 0o20200000,
}  # fmt: skip

FILE_MODES: dict[str, int] = {
    "S_IFMT": 0o170000, "S_IFSOCK": 0o140000, "S_IFLNK": 0o120000, "S_IFREG": 0o100000,
    "S_IFBLK": 0o60000, "S_IFDIR": 0o40000, "S_IFCHR": 0o20000, "S_IFIFO": 0o10000,
    "S_ISUID": 0o4000, "S_ISGID": 0o2000, "S_ISVTX": 0o1000,
    "S_IRWXU": 0o700, "S_IRUSR": 0o400, "S_IWUSR": 0o200, "S_IXUSR": 0o100,
    "S_IRWXG": 0o70, "S_IRGRP": 0o40, "S_IWGRP": 0o20, "S_IXGRP": 0o10,
    "S_IRWXO": 0o7, "S_IROTH": 0o4, "S_IWOTH": 0o2, "S_IXOTH": 0o1,
}  # fmt: skip

SIGNALS: dict[str, int] = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6,
    "SIGBUS": 7, "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12,
    "SIGPIPE": 13, "SIGALRM": 14, "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17,
    "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20, "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23,
    "SIGXCPU": 24, "SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28,
    "SIGIO": 29, "SIGPWR": 30, "SIGSYS": 31,
}  # fmt: skip

ADDRESS_FAMILIES: dict[str, int] = {"AF_UNSPEC": 0, "AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10}

PTRACE_REQUESTS: dict[str, int] = {
    "PTRACE_TRACEME": 0, "PTRACE_PEEKTEXT": 1, "PTRACE_PEEKDATA": 2, "PTRACE_PEEKUSR": 3,
    "PTRACE_POKETEXT": 4, "PTRACE_POKEDATA": 5, "PTRACE_POKEUSR": 6, "PTRACE_CONT": 7,
    "PTRACE_KILL": 8, "PTRACE_SINGLESTEP": 9, "PTRACE_GETREGS": 12, "PTRACE_SETREGS": 13,
    "PTRACE_ATTACH": 16, "PTRACE_DETACH": 17, "PTRACE_SYSCALL": 24, "PTRACE_SEIZE": 0x4206,
}  # fmt: skip

ERRNOS: dict[str, int] = {
    "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "EBADF": 9, "EAGAIN": 11,
    "ENOMEM": 12, "EACCES": 13, "EFAULT": 14, "EBUSY": 16, "EEXIST": 17, "ENOTDIR": 20,
    "EISDIR": 21, "EINVAL": 22, "EROFS": 30, "ECONNREFUSED": 111,
}  # fmt: skip

UNLINK_FLAGS: dict[str, int] = {"AT_REMOVEDIR": 0x200}

PROTOCOLS: dict[str, int] = {"IPPROTO_TCP": 6, "IPPROTO_UDP": 17, "IPPROTO_ICMP": 1}


def kernel_constants() -> dict[str, int]:
    """Every table above in one fresh dict (names do not overlap)."""
    merged: dict[str, int] = {}
    for table in (
        OPEN_FLAGS, FILE_MODES, SIGNALS, ADDRESS_FAMILIES, PTRACE_REQUESTS, ERRNOS,
        UNLINK_FLAGS, PROTOCOLS,
    ):  # fmt: skip
        merged.update(table)
    return merged
