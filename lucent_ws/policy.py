"""Room policies: per-room rules matched by exact name or ``prefix*`` pattern (pure).

A :class:`RoomPolicy` says whether a room has presence (and sends presence
diffs), which metadata keys members may see of each other, whether it keeps a
history (and for how long), whether clients may publish to it, and how many
members it takes. :class:`Policies` finds the policy of a room: an exact name
wins over patterns, a longer prefix over a shorter one, and an unmatched room
gets the default policy, which is the behaviour of a hub without policies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from .errors import ConfigurationError

__all__ = ["DEFAULT_POLICY", "ClientPublish", "Policies", "RoomPolicy"]

ClientPublish = Literal["members", "none"]


@dataclass(frozen=True, slots=True)
class RoomPolicy:
    """The rules of the rooms ``pattern`` matches (an exact name, or a prefix ending in ``*``)."""

    pattern: str = "*"
    presence: bool = False
    """Members may ask who is in the room (``presence``)."""
    join_leave: bool = False
    """Members get batched ``presence_diff`` messages as others join and leave."""
    presence_info: tuple[str, ...] = ()
    """Metadata keys members may see of each other; never the whole metadata."""
    history_size: int = 0
    """Messages kept for ``history`` and recovery; 0: no history."""
    history_ttl: float = 300.0
    """Seconds a message stays in the history."""
    client_publish: ClientPublish = "members"
    """``"members"``: members may ``broadcast``; ``"none"``: only the server publishes."""
    max_members: int = 0
    """Members at most (0: no limit); a join over it gets ``room_full``."""

    def __post_init__(self) -> None:
        if not self.pattern or self.pattern.count("*") > 1 or "*" in self.pattern[:-1]:
            raise ConfigurationError(
                f"room pattern {self.pattern!r}: an exact name, or a prefix ending in '*'"
            )
        if self.client_publish not in ("members", "none"):
            raise ConfigurationError(
                f"client_publish must be 'members' or 'none', not {self.client_publish!r}"
            )
        if self.history_size < 0 or self.max_members < 0:
            raise ConfigurationError("history_size and max_members must not be negative")
        if self.history_ttl <= 0:
            raise ConfigurationError("history_ttl must be positive")
        if self.join_leave and not self.presence:
            raise ConfigurationError(f"room pattern {self.pattern!r}: join_leave needs presence")
        object.__setattr__(self, "presence_info", tuple(self.presence_info))

    @property
    def is_prefix(self) -> bool:
        """True for a ``prefix*`` pattern."""
        return self.pattern.endswith("*")

    def matches(self, room: str) -> bool:
        """True if this policy's pattern covers ``room``."""
        if self.is_prefix:
            return room.startswith(self.pattern[:-1])
        return room == self.pattern

    def as_json(self) -> dict[str, Any]:
        """The policy as a JSON object (``GET /admin/policies``)."""
        data = asdict(self)
        data["presence_info"] = list(self.presence_info)
        return data


DEFAULT_POLICY: Final = RoomPolicy("*")
"""What a room no policy matches gets: no presence, no history, anyone may publish."""


class Policies:
    """The policies of a hub, looked up by room name (cached per room)."""

    __slots__ = ("_cache", "_exact", "_prefixes", "default")

    def __init__(self, policies: Iterable[RoomPolicy] = ()) -> None:
        self._exact: dict[str, RoomPolicy] = {}
        prefixes: dict[str, RoomPolicy] = {}
        self.default = DEFAULT_POLICY
        for policy in policies:
            table = prefixes if policy.is_prefix else self._exact
            key = policy.pattern[:-1] if policy.is_prefix else policy.pattern
            if key in table:
                raise ConfigurationError(f"room pattern {policy.pattern!r} is given twice")
            if policy.pattern == "*":
                self.default = policy
            else:
                table[key] = policy
        # Longest prefix first: the first match is the longest.
        self._prefixes = sorted(prefixes.items(), key=lambda item: len(item[0]), reverse=True)
        self._cache: dict[str, RoomPolicy] = {}

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes) or self.default is not DEFAULT_POLICY

    def __iter__(self) -> Any:
        yield from self._exact.values()
        for _, policy in self._prefixes:
            yield policy
        if self.default is not DEFAULT_POLICY:
            yield self.default

    def for_room(self, room: str) -> RoomPolicy:
        """The policy of ``room``: exact name, else the longest matching prefix, else default."""
        policy = self._cache.get(room)
        if policy is not None:
            return policy
        policy = self._exact.get(room)
        if policy is None:
            policy = next(
                (p for prefix, p in self._prefixes if room.startswith(prefix)), self.default
            )
        if len(self._cache) >= 10_000:
            self._cache.clear()  # rooms come and go; the cache must not grow with them
        self._cache[room] = policy
        return policy

    @classmethod
    def from_mappings(cls, rooms: Iterable[Mapping[str, Any]]) -> Policies:
        """Policies from plain mappings (a config file's ``[[rooms]]`` tables)."""
        return cls(RoomPolicy(**dict(room)) for room in rooms)
