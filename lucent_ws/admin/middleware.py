"""The admin app's middleware: authentication, CSRF, and JSON error answers."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from .auth import CSRF_HEADER, SESSION_COOKIE
from .http import BadRequest, error_response
from .keys import ADMIN_KEY, AdminState
from .throttle import client_address

__all__ = ["admin_middleware", "throttled"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNAUTHORIZED = "A valid admin token is required (Authorization: Bearer <token>)"


def _unauthorized() -> web.Response:
    return error_response(
        401,
        "unauthorized",
        _UNAUTHORIZED,
        headers={"WWW-Authenticate": 'Bearer realm="lucent_ws admin"'},
    )


def throttled(state: AdminState, request: web.Request) -> web.Response | None:
    """429 if the client's address made too many wrong token attempts, else None."""
    wait = state.throttle.retry_after(client_address(request, state.trust_proxy))
    if not wait:
        return None
    return error_response(
        429,
        "too_many_attempts",
        f"Too many wrong admin tokens from your address; try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


async def _refusal(request: web.Request) -> web.Response | None:
    """None if the request may go on, else the answer refusing it."""
    state = request.config_dict[ADMIN_KEY]
    if not state.hosts.allows_request(request):
        return error_response(403, "host", "Host not allowed")
    route_name = request.match_info.route.name
    if route_name is not None and route_name in state.public_routes:
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        if (refusal := throttled(state, request)) is not None:
            return refusal
        client = client_address(request, state.trust_proxy)
        if state.auth.check_bearer(header):
            state.throttle.succeeded(client)
            return None
        state.throttle.failed(client)
        return _unauthorized()
    session = state.auth.get_session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return _unauthorized()
    if request.method in _SAFE_METHODS:
        return None
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type == "application/x-www-form-urlencoded":
        value = (await request.post()).get("csrf")
        given = value if isinstance(value, str) else None
    if not state.auth.check_csrf(session, given):
        return error_response(403, "csrf", f"Missing or wrong {CSRF_HEADER} header")
    return None


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, then turn refusals and routing errors into JSON answers."""
    refusal = await _refusal(request)
    if refusal is not None:
        return refusal
    try:
        return await handler(request)
    except BadRequest as exc:
        return exc.response
    except web.HTTPMethodNotAllowed as exc:
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here",
            headers={"Allow": ", ".join(sorted(exc.allowed_methods))},
        )
    except web.HTTPNotFound:
        return error_response(404, "not_found", "No such admin resource")
