"""Process-level helpers the benchmark's server and client processes share (notebook 17)."""

from __future__ import annotations

import resource
import sys

__all__ = ["peak_rss_mb", "raise_fd_limit"]


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file limit towards ``wanted`` (at most the hard limit).

    1,000 servers need 2,000 descriptors in the server process (listener and connection
    each) and 1,000 in the client, more than the common default of 1,024. Returns the
    soft limit now in force; never raises (a limit that cannot be raised stays).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    On Linux it is ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` would do, but a
    child of a big process (a Jupyter kernel) inherits its parent's peak through fork
    and exec, so every client would seem to need as much memory as the kernel. Elsewhere
    it is ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
