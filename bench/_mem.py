"""Process memory figures, the same way for every Python peer (Go: bench/clientgo)."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import resource

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident set size in bytes, now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss() -> int:
    """Peak resident set size in bytes: ``VmHWM`` (``ru_maxrss`` survives ``exec`` and
    would report the parent's peak when that is larger)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def settle() -> int:
    """Collect garbage and hand free heap back to the OS (as Go's ``FreeOSMemory``);
    the RSS that remains is live memory."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss()
