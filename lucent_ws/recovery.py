"""The answer to a recovery: all the missed messages, or none and why (pure).

:meth:`lucent_ws.history.HistoryStore.recover` builds a :class:`RecoveryResult`;
a session turns it into the ``joined`` reply (``recovered``, ``missed``,
``reason``, ``epoch``, ``offset``) followed by the replay. Recovery is
all-or-nothing: a result that is not ``recovered`` carries no entry, so a client
never gets a partial replay that it could mistake for the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .history import Entry, Position

__all__ = ["RecoveryReason", "RecoveryResult"]


class RecoveryReason(StrEnum):
    """Why a recovery failed, checked in this order."""

    EPOCH_CHANGED = "epoch_changed"
    """The room's stream was created afresh since the client's position."""
    AHEAD = "ahead"
    """The client names an offset the room has not reached (or a negative one)."""
    TOO_OLD = "too_old"
    """Some missed messages are no longer kept (size, age or the byte cap)."""
    TOO_MANY = "too_many"
    """More missed messages than the recovery limit (``--recover-max``)."""
    TOO_LARGE = "too_large"
    """The missed messages total more bytes than the replay may queue."""


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    """The outcome of a recovery.

    ``missed`` counts the messages published after the client's offset when the
    epoch is the room's (0 otherwise: unknowable); ``entries`` holds all of them,
    oldest first, when ``recovered``, and nothing otherwise; ``position`` is the
    room's current epoch and top offset, the client's new position either way.
    """

    recovered: bool
    missed: int
    reason: RecoveryReason | None
    entries: tuple[Entry, ...]
    position: Position

    @classmethod
    def failed(cls, reason: RecoveryReason, missed: int, position: Position) -> RecoveryResult:
        """A failed recovery: no entries, a reason."""
        return cls(False, missed, reason, (), position)

    @property
    def epoch(self) -> str:
        """The room's current epoch."""
        return self.position.epoch

    @property
    def offset(self) -> int:
        """The room's current top offset."""
        return self.position.offset
