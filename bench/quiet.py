"""Waiting for the machine to be quiet: other programs skew CPU-bound measurements."""

from __future__ import annotations

import asyncio
import time

from bench import proc
from bench.progress import say

QUIET = 0.3  # CPUs other programs may use while a measurement runs


async def other_load(seconds: float = 1.0) -> float:
    """CPUs used by programs other than this one over ``seconds``."""
    before = proc.machine_busy_seconds() - proc.self_cpu_seconds()
    await asyncio.sleep(seconds)
    return (proc.machine_busy_seconds() - proc.self_cpu_seconds() - before) / seconds


async def wait_quiet(limit: float = 120.0, busy: float = QUIET, exclude_pid: int = 0) -> float:
    """Wait (at most ``limit`` s) until other programs use under ``busy`` CPUs.

    ``exclude_pid``: a process whose own CPU use does not count (an idle server under test).
    """
    deadline = time.monotonic() + limit
    while True:
        base = proc.cpu_seconds(exclude_pid) if exclude_pid else 0.0
        used = await other_load()
        if exclude_pid:
            used -= proc.cpu_seconds(exclude_pid) - base
        if used < busy or time.monotonic() > deadline:
            return used
        say(f"  waiting for a quiet machine: other programs use {used:.2f} CPUs")
