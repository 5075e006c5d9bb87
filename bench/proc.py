"""Process measurements from /proc and getrusage, CPU pinning and descriptor limits."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def write_calls(pid: int) -> int:
    """Write system calls the process made so far (``syscw`` of ``/proc/PID/io``)."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("syscw:"):
                return int(line.split()[1])
    return 0


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid``, in bytes."""
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def self_cpu_seconds() -> float:
    """User plus system CPU time of this process, in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent busy since boot (everything but idle and iowait), in seconds."""
    with open("/proc/stat", "rb") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICK


@dataclass
class CpuWindow:
    """CPU time of a server process, of the load client and of everything else over a window.

    The load client is this process and the processes it ``watch``es. ``other`` is busy
    time of the whole machine spent by neither: other programs competing for the two
    CPUs (or wrk, when it drives the load).
    """

    pid: int
    server: float = 0.0
    client: float = 0.0
    other: float = 0.0
    helpers: list[int] = field(default_factory=list)
    _start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def watch(self, pid: int) -> None:
        """Count process ``pid`` as part of the load client."""
        self.helpers.append(pid)

    def _client(self) -> float:
        return self_cpu_seconds() + sum(map(cpu_seconds, self.helpers))

    def __enter__(self) -> CpuWindow:
        self._start = (cpu_seconds(self.pid), self._client(), machine_busy_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        self.server = cpu_seconds(self.pid) - self._start[0]
        self.client = self._client() - self._start[1]
        busy = machine_busy_seconds() - self._start[2]
        self.other = max(0.0, busy - self.server - self.client)


def raise_nofile() -> int:
    """Raise the soft open-file limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin_self(cpu: int) -> None:
    """Pin this process to one CPU, when the machine has it."""
    if cpu in os.sched_getaffinity(0) or cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})
