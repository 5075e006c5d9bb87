"""A hub process with history rooms ``h:*`` (the CLI has no room policies on this branch).

``python tests/reliability/history_hub.py PORT [RECOVER_MAX]``: heartbeat and rate limit
off, no admin app, until killed.
"""

from __future__ import annotations

import sys

from aiohttp import web

from lucent_ws import WebSocketManager, create_app
from lucent_ws.config import Limits
from lucent_ws.policy import RoomPolicy


def main() -> None:
    port = int(sys.argv[1])
    recover_max = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    manager = WebSocketManager(
        heartbeat=None,
        policies=[RoomPolicy("h:*", history_size=1000, history_ttl=600)],
        recover_max=recover_max,
    )
    app = create_app(manager=manager, admin=False, limits=Limits(rate_limit=0))
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


if __name__ == "__main__":
    main()
