"""``python -m bench.history_server FLAGS``: run.py whose rooms ``h:*`` keep a history.

The command line takes no room policies on this branch; this wraps ``lucent_ws.cli``
and gives the app's manager one policy: ``h:*`` keeps 1,000 messages for 600 s.
"""

from __future__ import annotations

import sys

from aiohttp import web

from lucent_ws import cli
from lucent_ws.keys import MANAGER_KEY
from lucent_ws.policy import Policies, RoomPolicy

HISTORY = RoomPolicy("h:*", history_size=1000, history_ttl=600)
_build_app = cli.build_app


def build_app(settings: cli.Settings) -> web.Application:
    """The CLI's app, with the history policy."""
    app = _build_app(settings)
    app[MANAGER_KEY].policies = Policies([HISTORY])
    return app


if __name__ == "__main__":
    cli.build_app = build_app  # type: ignore[assignment]
    raise SystemExit(cli.main(sys.argv[1:]))
