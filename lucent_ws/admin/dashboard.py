"""The HTML dashboard: login page, dashboard page, logout and its static files.

Templates and static files come from the ``lucent_ws.admin_templates``
package (the top-level ``admin_templates/`` directory), so they are found from
a wheel as well as from a checkout.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..auth import same_secret
from ..version import __version__
from .auth import CSRF_COOKIE, SESSION_COOKIE, AdminAuth
from .keys import ADMIN_KEY
from .routing import RouteTable
from .throttle import client_address, forwarded_proto
from .views import admin_prefix

__all__ = ["JINJA_KEY", "dashboard", "setup_templates"]

TEMPLATES_PACKAGE = "lucent_ws.admin_templates"
JINJA_KEY = web.AppKey("lucent_ws.admin.jinja", jinja2.Environment)
"""The admin app's own Jinja environment; the host's is never touched."""

dashboard = RouteTable("dashboard")

_STATIC_TYPES = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "login.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def setup_templates(app: web.Application) -> None:
    """Give ``app`` its private Jinja environment (autoescape on)."""
    aiohttp_jinja2.setup(
        app,
        app_key=JINJA_KEY,
        loader=jinja2.PackageLoader(TEMPLATES_PACKAGE, ""),
        autoescape=True,
        default_helpers=False,
    )


def _render(
    request: web.Request, template: str, context: dict[str, object], status: int = 200
) -> web.Response:

    context = {"version": __version__, "prefix": admin_prefix(request), **context}
    response = aiohttp_jinja2.render_template(
        template, request, context, app_key=JINJA_KEY, status=status
    )
    response.headers.update(_SECURITY_HEADERS)
    return response


def _set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=admin_prefix(request),
        httponly=True,
        samesite="Strict",
        secure=forwarded_proto(request, request.config_dict[ADMIN_KEY].trust_proxy) == "https",
    )


def _login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    # Login CSRF: a random value in a cookie and in the form must match (double submit).
    csrf = request.cookies.get(CSRF_COOKIE) or AdminAuth.new_csrf()
    response = _render(request, "login.html", {"csrf": csrf, "error": error}, status)
    _set_cookie(response, request, CSRF_COOKIE, csrf, max_age=3600)
    return response


@dashboard.route(
    "GET",
    "/",
    summary="The dashboard (the login page without a session)",
    responses={200: "text/html"},
    public=True,
)
async def show_dashboard(request: web.Request) -> web.StreamResponse:
    """The dashboard for a logged-in session, the login page otherwise."""
    auth = request.config_dict[ADMIN_KEY].auth
    session = auth.get_session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return _login_page(request)
    return _render(request, "dashboard.html", {"csrf": session.csrf})


@dashboard.route(
    "POST",
    "/login",
    summary="Trade the admin token for a dashboard session cookie",
    responses={303: "", 401: "text/html", 403: "text/html", 429: "text/html"},
    form={"token": "the admin token", "csrf": "the login form's CSRF value"},
    public=True,
)
async def login(request: web.Request) -> web.StreamResponse:
    """Check the login form; on success set the session cookie and go to the dashboard."""
    form = await request.post()
    token, csrf = form.get("token"), form.get("csrf")
    expected_csrf = request.cookies.get(CSRF_COOKIE)
    if not isinstance(csrf, str) or not expected_csrf or not same_secret(csrf, expected_csrf):
        return _login_page(request, "Your login form expired. Please try again.", 403)
    state = request.config_dict[ADMIN_KEY]
    auth, client = state.auth, client_address(request, state.trust_proxy)
    wait = state.throttle.retry_after(client)
    if wait:
        response = _login_page(
            request,
            f"Too many wrong tokens from your address. Try again in {wait} seconds.",
            429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    if not isinstance(token, str) or not auth.check_token(token.strip()):
        state.throttle.failed(client)
        return _login_page(request, "That token is not valid.", 401)
    state.throttle.succeeded(client)
    session_id, _ = auth.open_session()
    response = web.HTTPSeeOther(location=admin_prefix(request))
    _set_cookie(response, request, SESSION_COOKIE, session_id, max_age=int(auth.session_ttl))
    response.del_cookie(CSRF_COOKIE, path=admin_prefix(request))
    raise response


@dashboard.route(
    "POST",
    "/logout",
    summary="End the dashboard session",
    responses={303: "", 403: "application/json"},
    form={"csrf": "the session's CSRF token"},
)
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (the CSRF check happens in the middleware) and show the login page."""
    request.config_dict[ADMIN_KEY].auth.close_session(request.cookies.get(SESSION_COOKIE))
    response = web.HTTPSeeOther(location=admin_prefix(request))
    response.del_cookie(SESSION_COOKIE, path=admin_prefix(request))
    raise response


@cache
def _static(name: str) -> bytes:
    return (resources.files(TEMPLATES_PACKAGE) / "static" / name).read_bytes()


@dashboard.route(
    "GET",
    "/static/{name}",
    summary="The dashboard's script, style sheet and icon",
    responses={200: "text/plain", 404: "application/json"},
    public=True,
)
async def static_file(request: web.Request) -> web.StreamResponse:
    """One of the dashboard's own files; nothing else is served."""
    name = request.match_info["name"]
    content_type = _STATIC_TYPES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=_static(name),
        headers={
            "Content-Type": content_type,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )
