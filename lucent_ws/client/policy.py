"""The reconnect rules both official clients share (SPEC section 11), pure and testable.

- Backoff: full jitter, ``uniform(0, min(cap, base * 2**attempt))``, the attempt
  counter reset once a connection stayed up for ``reset_after`` seconds.
- After a drain hint ``{"type": "reconnect", "within": S}`` the first attempt is
  spread uniformly over ``[0, S]`` instead.
- Close codes: 4001 (kicked) and 1008 (policy, expired credentials) are final, as
  are the handshake statuses 400, 401 and 403; every other close (1001, 1006, 1011,
  1013, 4000, ...) and 503 reconnect. 1008, 401 and 403 first ask ``get_token`` once
  for a fresh credential and try again.
- A re-join answered ``unavailable`` is asked again on the same connection after
  ``uniform(0, window(n))``; the room is kept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AUTH_CLASS",
    "FINAL_CLOSE_CODES",
    "FINAL_STATUSES",
    "Backoff",
    "is_final",
]

ABNORMAL: Final = 1006
"""Close code reported when the connection ended without a close frame."""
FINAL_CLOSE_CODES: Final = frozenset({1008, 4001})
FINAL_STATUSES: Final = frozenset({400, 401, 403})
AUTH_CLASS: Final = frozenset({1008, 401, 403})
"""Failures after which ``get_token`` is asked once for a fresh credential."""
UNAVAILABLE: Final = "unavailable"
"""The error of a request the hub cannot serve for now (a history room while its broker is
away): a re-join that gets it keeps the room and asks again after a backoff."""


def is_final(code: int | None) -> bool:
    """True when a close code or handshake status ends the client instead of a reconnect."""
    return code in FINAL_CLOSE_CODES or code in FINAL_STATUSES


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff (seconds)."""

    base: float = 0.5
    cap: float = 20.0
    reset_after: float = 10.0
    """A connection up this long resets the attempt counter."""
    attempt: int = 0

    def window(self, attempt: int | None = None) -> float:
        """The upper bound of the delay before ``attempt`` (the current one by default)."""
        n = self.attempt if attempt is None else attempt
        return min(self.cap, self.base * 2.0 ** min(n, 64))

    def next_delay(self, rng: random.Random | None = None) -> float:
        """Sample the delay before the next attempt, then count the attempt."""
        delay = (rng or random).uniform(0.0, self.window())
        self.attempt += 1
        return delay

    def connected_for(self, seconds: float) -> None:
        """A connection ended after ``seconds`` up: reset the counter if that was long."""
        if seconds >= self.reset_after:
            self.attempt = 0


def drain_delay(within: float, rng: random.Random | None = None) -> float:
    """The first attempt after a drain hint: uniform over ``[0, within]``."""
    return (rng or random).uniform(0.0, max(0.0, within))
