"""The process figures of ``/debug/vars``'s ``memstats``: Go's runtime.MemStats, for Python.

Resident memory and threads come from the kernel (``/proc/self/status``), open descriptors
from ``/proc/self/fd``; heap figures from the interpreter: ``gc`` always, ``tracemalloc`` only
when something started tracing (tracing costs memory and time, so the agent never turns it on
by itself).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import tracemalloc
from typing import Any

_STATUS_FIELDS = {
    "VmRSS": "rss_bytes",
    "VmHWM": "rss_peak_bytes",
    "VmSize": "virtual_bytes",
    "RssAnon": "rss_anon_bytes",
    "RssFile": "rss_file_bytes",
}


def read_proc_status(path: str = "/proc/self/status") -> dict[str, int]:
    """Memory sizes (bytes) and the kernel's thread count from a ``status`` file."""
    figures: dict[str, int] = {}
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return figures  # not Linux, or procfs not mounted: memstats shows what it can
    for line in lines:
        name, _, value = line.partition(":")
        parts = value.split()
        if name in _STATUS_FIELDS and len(parts) == 2 and parts[1] == "kB":
            figures[_STATUS_FIELDS[name]] = int(parts[0]) * 1024
        elif name == "Threads" and parts:
            figures["os_threads"] = int(parts[0])
    return figures


def count_open_fds(path: str = "/proc/self/fd") -> int | None:
    try:
        return len(os.listdir(path))
    except OSError:
        return None


def memstats() -> dict[str, Any]:
    """The ``memstats`` variable: kernel figures, thread and descriptor counts, heap."""
    stats: dict[str, Any] = dict(read_proc_status())
    stats["python_threads"] = threading.active_count()
    stats["open_fds"] = count_open_fds()
    stats["allocated_blocks"] = sys.getallocatedblocks()
    stats["gc"] = {
        "enabled": gc.isenabled(),
        "pending": list(gc.get_count()),
        "thresholds": list(gc.get_threshold()),
        "generations": [dict(generation) for generation in gc.get_stats()],
        "frozen": gc.get_freeze_count(),
    }
    tracing = tracemalloc.is_tracing()
    heap: dict[str, Any] = {"tracing": tracing}
    if tracing:
        current, peak = tracemalloc.get_traced_memory()
        heap["current_bytes"] = current
        heap["peak_bytes"] = peak
        heap["overhead_bytes"] = tracemalloc.get_tracemalloc_memory()
    stats["tracemalloc"] = heap
    return stats
