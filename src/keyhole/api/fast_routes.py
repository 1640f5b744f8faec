"""The proxy routes of both dialects and the MCP endpoints, found ahead of the framework's router.

The synchronous proxy call is the route whose overhead is the product. Measured, the
framework's own layers (its error and exception middleware, and the router's scan of every
route, one regex each) cost a noticeable share of the proxy's CPU per call. This layer sits
where the router would be reached and tries only those routes, which are the very
``Route`` objects the router holds, and hands a match to that route exactly as the router
does. Everything else goes on to the framework untouched.

So the fast path runs the same endpoint functions, with the same authentication, idempotency,
error envelopes and context headers. What it skips is what no matched route needs: the
router's scan and the framework's 404/405 handling. An unexpected failure is answered by the
layer outside both paths (``api.middleware.RequestContext``). Middleware is composed outside this
layer, in ``create_app``, never added to the framework app, so it can apply to both paths.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send


class FastRoutes:
    def __init__(self, app: Starlette, routes: Sequence[Route]) -> None:
        if any(route not in app.router.routes for route in routes):
            raise ValueError("a fast route must be one of the framework's own routes")
        self.app = app
        self._routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self._routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope["route"] = route
                    scope.update(child_scope)
                    scope["app"] = self.app  # what the framework and its router set before a route runs
                    scope.setdefault("router", self.app.router)
                    await route.handle(scope, receive, send)
                    return
        await self.app(scope, receive, send)
