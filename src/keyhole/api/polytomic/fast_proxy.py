"""``POST /api/connections/{id}/proxy`` served ahead of the framework's middleware and routing.

The synchronous proxy call is the one route whose overhead is the product: measured, the
framework's layers (error and exception middleware, the router's scan, request and response
objects) cost about a tenth of the proxy's CPU per call. This ASGI layer wraps the whole app,
takes that one route and hands everything else on untouched. What the layers would have done
is done here through the same functions: the request context headers, authentication, the
call itself (``proxy.run``), the Polytomic error envelope, the 500 of an unexpected failure.
A call carrying ``Idempotency-Key`` is handed on, to the framework route that stores replays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope, Send

from keyhole.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from keyhole.api.links import public_base_url
from keyhole.api.middleware import Headers, enter_context, log_access, note_error, note_principal
from keyhole.api.polytomic import proxy
from keyhole.api.polytomic.errors import error_response
from keyhole.api.requests import read_limited
from keyhole.api.responses import render_json
from keyhole.errors import KeyholeError, internal_error
from keyhole.services import Services

logger = logging.getLogger("keyhole")

_PREFIX = "/api/connections/"
_SUFFIX = "/proxy"
_ROUTE = _PREFIX + "{connection_id}" + _SUFFIX
_JSON = (b"content-type", b"application/json")


class FastProxy:
    def __init__(self, app: Starlette, *, access_log: bool = False) -> None:
        self.app = app
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection_id = _connection_id(scope)
        if connection_id is None:
            await _framework(self.app, scope, receive, send)
            return
        headers: dict[str, str] = {}
        for name, value in reversed(scope["headers"]):  # reversed: the first of repeats wins
            headers[name.decode("latin-1")] = value.decode("latin-1")
        if IDEMPOTENCY_HEADER in headers:
            await _framework(self.app, scope, receive, send)
            return
        started = time.perf_counter()
        context = enter_context(scope)
        status = 500
        try:
            status = await self._serve(scope, receive, send, connection_id, headers, context)
        except ClientDisconnect:
            status = 499  # nobody to answer; recorded in the access log only
        except Exception:
            logger.exception("unhandled error on POST %s", scope["path"])
            await _send_error(send, internal_error(scope["state"]["request_id"]), context)
        finally:
            if self._access_log:
                scope["path_params"] = {"connection_id": connection_id}
                log_access(scope, status, started, route=_ROUTE)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        connection_id: str,
        headers: dict[str, str],
        context: Headers,
    ) -> int:
        services: Services = self.app.state.services  # set by the lifespan before any request
        try:
            principal = await services.tenancy.authenticate(headers)
            note_principal(scope, principal)
            payload = await proxy.run(
                services,
                principal,
                connection_id,
                lambda limit: read_limited(_chunks(receive), headers.get("content-length"), limit),
                lambda: public_base_url(Request(scope), services.settings),
            )
        except KeyholeError as error:
            note_error(scope, error.key)
            return await _send_error(send, error, context)
        body = render_json(payload)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON, (b"content-length", str(len(body)).encode()), *context],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return 200


async def _framework(app: Starlette, scope: Scope, receive: Receive, send: Send) -> None:
    """Hand a request to the framework. Its error middleware re-raises an unexpected failure
    after the 500 envelope went out (and the handler logged it); reaching the server, that
    exception would close a keep-alive connection whose answer is complete. Only a failure
    in the middle of an answer may still close it: the answer is broken then."""
    answered = False

    async def tracking_send(message: Message) -> None:
        nonlocal answered
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered = True

    try:
        await app(scope, receive, tracking_send)
    except Exception:
        if not answered:
            raise


def _connection_id(scope: Scope) -> str | None:
    """The id when this is the synchronous proxy route (the framework's ``[^/]+`` parameter)."""
    path: str = scope["path"]
    if scope["method"] != "POST" or not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
        return None
    connection_id = path[len(_PREFIX) : -len(_SUFFIX)]
    if not connection_id or "/" in connection_id:
        return None
    return connection_id


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _send_error(send: Send, error: KeyholeError, context: Headers) -> int:
    response = error_response(error)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [*response.raw_headers, *context],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
    return response.status_code
