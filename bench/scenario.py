"""The shape of a scenario: a name, a one-line summary and a coroutine producing a Result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.context import Context
from bench.results import Result


@dataclass(frozen=True)
class Scenario:
    """A benchmark scenario. Register new ones in ``bench.scenarios``."""

    name: str
    summary: str
    run: Callable[[Context], Awaitable[Result]]
