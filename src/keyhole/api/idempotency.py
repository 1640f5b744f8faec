"""Idempotency-Key for any dialect's POST routes, in one call from its endpoint wrapper::

    return await idempotent(request, services.idempotency, principal, run)

``run`` must turn the dialect's domain errors into responses itself (so that error outcomes
are fixed too); errors of the key itself (400 bad key, 409 in progress, 422 reused) are
raised as ``KeyholeError`` for the wrapper to render in its own envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive

from keyhole.api.requests import read_body
from keyhole.idempotency import Claim, IdempotencyService, Replay, StoredResponse, check_key, fingerprint
from keyhole.tenancy.principal import Principal

logger = logging.getLogger(__name__)

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_BODY_BYTES = 64 * 1024 * 1024  # the largest body any POST route accepts (the proxy's)
# Answers that say "nothing was done, retry later" are not fixed: replaying them would turn a
# momentary rate limit into a 24-hour one.
NOT_FIXED = frozenset({429, 503})
_SKIPPED_HEADERS = frozenset({b"content-length", b"date", b"server", b"x-request-id"})


async def idempotent(
    request: Request,
    service: IdempotencyService,
    principal: Principal,
    run: Callable[[Request], Awaitable[Response]],
) -> Response:
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST":
        return await run(request)
    check_key(key)
    body = await read_body(request, MAX_BODY_BYTES)
    outcome = await service.begin(
        principal.organization_id,
        principal.id,
        key,
        fingerprint(request.method, request.url.path, request.url.query, body),
    )
    if isinstance(outcome, Replay):
        return _replay(outcome.response)
    try:
        response = await run(Request(request.scope, _replaying(body, request.receive)))
    except BaseException:
        await service.abandon(outcome)
        raise
    await _settle(service, outcome, response)
    return response


async def _settle(service: IdempotencyService, claim: Claim, response: Response) -> None:
    if response.status_code in NOT_FIXED or isinstance(response, StreamingResponse):
        await service.abandon(claim)
        return
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in response.raw_headers
        if name.lower() not in _SKIPPED_HEADERS
    ]
    try:
        await service.complete(claim, StoredResponse(response.status_code, headers, bytes(response.body)))
    except Exception:  # the answer still goes out; the marker lapses after the lock time
        logger.exception("could not store the outcome of an idempotent request")


def _replay(stored: StoredResponse) -> Response:
    response = Response(content=stored.body, status_code=stored.status)
    response.raw_headers = [
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers),
        (b"content-length", str(len(stored.body)).encode()),
        (REPLAYED_HEADER.lower().encode(), b"true"),
    ]
    return response


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the handler, then defers to the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
