"""The history's memory stays under its byte cap and is given back after the TTL.

10,000 rooms x 100 entries x 512 B (500 MB of messages) go through a store capped
at 64 MiB. Measured two ways: tracemalloc in this process (Python's own heap,
exact), and the RSS of a fresh process (what the OS sees, after ``malloc_trim``).
Also: an append costs the same in a store of 10,000 full rooms as in an empty one.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import subprocess
import sys
import timeit
import tracemalloc
from pathlib import Path

from lucent_ws.history import ENTRY_OVERHEAD, ROOM_OVERHEAD, HistoryStore
from lucent_ws.policy import RoomPolicy

ROOMS, PER_ROOM, SIZE = 10_000, 100, 512
MAX_BYTES = 64 * 1024 * 1024
TTL = 60.0
POLICY = RoomPolicy("m*", history_size=PER_ROOM, history_ttl=TTL)
MB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fill(store: HistoryStore, clock: Clock) -> None:
    """Round-robin over the rooms: every message a distinct 512-byte object."""
    names = [f"m{i}" for i in range(ROOMS)]
    filler = b"x" * (SIZE - 8)
    append = store.append
    for k in range(PER_ROOM):
        for i, name in enumerate(names):
            append(name, POLICY, b"%08d" % (k * ROOMS + i) + filler)
            clock.now += 1e-6


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: only what the allocator gives back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure_rss() -> dict[str, float]:
    """Run in a fresh process: RSS before, after the fill, after the TTL."""
    trim()
    base = rss()
    clock = Clock()
    store = HistoryStore(MAX_BYTES, clock=clock)
    fill(store, clock)
    trim()
    full = rss()
    stats = store.stats()
    clock.now += TTL
    store.expire()
    trim()
    after = rss()
    return {
        "base": base,
        "full": full,
        "after": after,
        "charged": stats.charged,
        "entries": stats.entries,
        "rooms": stats.rooms,
    }


def test_memory_stays_under_the_cap_and_returns_after_the_ttl() -> None:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        clock = Clock()
        store = HistoryStore(MAX_BYTES, clock=clock)
        fill(store, clock)
        gc.collect()
        full, peak = (m - base for m in tracemalloc.get_traced_memory())
        stats = store.stats()
        names = sum(sys.getsizeof(f"m{i}") for i in range(ROOMS))  # the store keeps them
        clock.now += TTL
        store.expire()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - base
        left = store.stats()
    finally:
        tracemalloc.stop()
    per_entry = (full - names - stats.rooms * ROOM_OVERHEAD) / stats.entries - SIZE
    print(
        f"\ntracemalloc: {ROOMS * PER_ROOM:,} appends of {SIZE} B into a {MAX_BYTES / MB:.0f} MiB "
        f"cap: {stats.entries:,} entries kept in {stats.rooms:,} rooms, charged "
        f"{stats.charged / MB:.1f} MiB, evicted {stats.evicted:,}; heap growth "
        f"{full / MB:.1f} MiB ({full / MAX_BYTES:.1%} of the cap), peak {peak / MB:.1f} MiB, "
        f"~{per_entry:.0f} B per entry over its message (charged {ENTRY_OVERHEAD}); "
        f"after the TTL {after / MB:.2f} MiB, {left.rooms} rooms, {left.entries} entries"
    )
    assert stats.charged <= MAX_BYTES
    assert stats.evicted == ROOMS * PER_ROOM - stats.entries
    assert full <= MAX_BYTES * 1.15
    assert peak <= MAX_BYTES * 1.15
    assert (left.rooms, left.entries, left.bytes, left.charged) == (0, 0, 0, 0)
    assert after <= 0.01 * MAX_BYTES


def test_rss_stays_under_the_cap_and_returns_after_the_ttl() -> None:
    code = "import json, tests.test_history_memory as m; print(json.dumps(m.measure_rss()))"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    growth, left = got["full"] - got["base"], got["after"] - got["base"]
    print(
        f"\nRSS (fresh process): base {got['base'] / MB:.1f} MiB, full {got['full'] / MB:.1f} MiB "
        f"(+{growth / MB:.1f} MiB = {growth / MAX_BYTES:.1%} of the {MAX_BYTES / MB:.0f} MiB cap, "
        f"{got['entries']:,} entries in {got['rooms']:,} rooms), after the TTL "
        f"{got['after'] / MB:.1f} MiB ({left / got['base']:+.1%} of the base)"
    )
    assert growth <= MAX_BYTES * 1.15
    assert got["after"] <= got["base"] * 1.10


def test_an_append_costs_the_same_in_a_full_store() -> None:
    """O(1): the cost per append barely moves from 10 rooms to 10,000 full rooms at the cap."""
    data = b"x" * SIZE

    def cost(store: HistoryStore, clock: Clock, rooms: int) -> float:
        names = [f"m{i}" for i in range(rooms)]
        n = 20_000

        def run() -> None:
            for i in range(n):
                store.append(names[i % rooms], POLICY, data)
                clock.now += 1e-6

        return min(timeit.repeat(run, number=1, repeat=5)) / n

    small_clock = Clock()
    small = cost(HistoryStore(MAX_BYTES, clock=small_clock), small_clock, 10)
    clock = Clock()
    full_store = HistoryStore(MAX_BYTES, clock=clock)
    fill(full_store, clock)
    full = cost(full_store, clock, ROOMS)
    print(
        f"\nappend: {small * 1e6:.2f} us in a store of 10 rooms, {full * 1e6:.2f} us in "
        f"{full_store.stats().rooms:,} rooms at the {MAX_BYTES / MB:.0f} MiB cap (evicting), "
        f"ratio {full / small:.2f}"
    )
    assert full <= 5 * small  # a scan per append would be ~1,000x; cache misses are not
