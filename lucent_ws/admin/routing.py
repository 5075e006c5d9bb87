"""Admin routes declared once: the app registers them and the OpenAPI document describes them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from marshmallow import Schema

__all__ = ["Handler", "Route", "RouteTable"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """One admin route and its documentation.

    ``responses`` maps a status to a marshmallow schema class (JSON), or to a
    media type string for other bodies; ``public`` routes need no admin token.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    responses: dict[int, type[Schema] | str]
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    form: dict[str, str] = field(default_factory=dict)
    public: bool = False

    @property
    def name(self) -> str:
        """The route's name in the app router."""
        return f"lucent_ws_admin.{self.handler.__name__}"


class RouteTable:
    """An ordered list of :class:`Route`, filled with the :meth:`route` decorator."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        responses: dict[int, type[Schema] | str],
        body: type[Schema] | None = None,
        query: type[Schema] | None = None,
        form: dict[str, str] | None = None,
        public: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated handler as ``method path``."""

        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method=method,
                    path=path,
                    handler=handler,
                    summary=summary,
                    tag=self.tag,
                    responses=responses,
                    body=body,
                    query=query,
                    form=form or {},
                    public=public,
                )
            )
            return handler

        return register

    def add_to(self, app: web.Application) -> None:
        """Register every route on ``app``'s router."""
        for route in self.routes:
            app.router.add_route(route.method, route.path, route.handler, name=route.name)
