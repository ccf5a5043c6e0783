"""What the benchmark asks of the machine it runs on (notebook 17): limits, CPUs, load.

The server and client processes raise their open-file limit and report their peak
memory here; the harness, ``poetrylab bench`` and notebook 17 ask how many CPUs this
process may really use (its CPU affinity, capped by a cgroup CPU quota, as in a
container or a JupyterHub pod) and whether other programs already keep them busy, in
which case every time and CPU figure the benchmark measures is distorted.
"""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BUSY_LOAD_PER_CPU",
    "MachineLoad",
    "machine_load",
    "peak_rss_mb",
    "raise_fd_limit",
    "usable_cpus",
]

BUSY_LOAD_PER_CPU = 0.5
"""A 1-minute load average above this many runnable tasks per usable CPU counts as busy:
other programs then hold, on average, half of what the benchmark's processes need."""


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file limit towards ``wanted`` (at most the hard limit).

    N servers need 2N descriptors in the server processes (a listener and a connection
    each) and N in the client, more than the common default of 1,024. Returns the soft
    limit now in force; never raises (a limit that cannot be raised stays).
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


def _cgroup_quota(proc_cgroup: Path, root: Path) -> float | None:
    """The CPU quota (in CPUs) of this process's cgroup, v2 or v1, or None if unlimited."""
    try:
        lines = proc_cgroup.read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        candidates: list[tuple[Path, Path | None]]
        if controllers == "":  # cgroup v2: one unified hierarchy
            candidates = [(root / relative / "cpu.max", None)]
        elif "cpu" in controllers.split(","):
            base = [root / "cpu" / relative, root / "cpu,cpuacct" / relative]
            candidates = [(b / "cpu.cfs_quota_us", b / "cpu.cfs_period_us") for b in base]
        else:
            continue
        for quota_file, period_file in candidates:
            try:
                text = quota_file.read_text(encoding="ascii").split()
                if period_file is None:  # v2: "max 100000" or "150000 100000"
                    quota, period = text[0], text[1]
                else:
                    quota, period = text[0], period_file.read_text(encoding="ascii").strip()
            except (OSError, IndexError):
                continue
            if quota not in ("max", "-1") and float(period) > 0:
                quotas.append(float(quota) / float(period))
            break
    return min(quotas) if quotas else None


def usable_cpus(
    proc_cgroup: str | Path = "/proc/self/cgroup", cgroup_root: str | Path = "/sys/fs/cgroup"
) -> float:
    """How many CPUs this process may use: its affinity set, capped by any cgroup CPU quota.

    ``os.cpu_count()`` counts the machine's CPUs, not the ones a container or a pinned
    process gets. A quota of 1.5 CPUs is returned as 1.5. Never less than a tenth of a CPU.
    """
    try:
        cpus: float = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(Path(proc_cgroup), Path(cgroup_root))
    if quota is not None:
        cpus = min(cpus, quota)
    return max(0.1, cpus)


@dataclass(frozen=True)
class MachineLoad:
    """How busy the machine is next to what this process may use.

    ``load`` is the 1-, 5- and 15-minute load averages (runnable tasks, machine-wide),
    ``cpus`` what :func:`usable_cpus` says. :attr:`busy` is None on a quiet machine, else
    a sentence for the reader saying what it means for the figures.
    """

    load: tuple[float, float, float]
    cpus: float

    @property
    def per_cpu(self) -> float:
        """The 1-minute load average per usable CPU."""
        return self.load[0] / self.cpus

    @property
    def busy(self) -> str | None:
        """None when the 1-minute load is under :data:`BUSY_LOAD_PER_CPU` per usable CPU;
        otherwise why the benchmark's figures would be distorted."""
        if self.per_cpu < BUSY_LOAD_PER_CPU:
            return None
        cpus = f"{self.cpus:g} usable CPU{'s' if self.cpus != 1 else ''}"
        return (
            f"this machine is busy: 1-minute load average {self.load[0]:.2f} on {cpus} "
            f"({self.per_cpu:.1f} runnable tasks per CPU). Other programs are using the CPUs "
            "the benchmark's servers and clients need, so its times and CPU figures will be "
            "distorted: longer, noisier, and unfair to the clients that need the most CPU."
        )

    def describe(self) -> str:
        """One line: the load, the usable CPUs and the verdict (quiet or busy)."""
        if self.busy:
            return self.busy
        return (f"load average {self.load[0]:.2f} on {self.cpus:g} usable CPUs: quiet enough "
                "to measure")  # fmt: skip


def machine_load(cpus: float | None = None) -> MachineLoad:
    """The load averages now, against ``cpus`` (default: :func:`usable_cpus`).

    Where the operating system has no load average, the load reads as 0 (quiet).
    """
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        one = five = fifteen = 0.0
    return MachineLoad((round(one, 2), round(five, 2), round(fifteen, 2)),
                       usable_cpus() if cpus is None else cpus)  # fmt: skip

