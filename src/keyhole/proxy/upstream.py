"""The one way a proxy call reads its upstream, used by every path that calls one: the
synchronous call (``ProxyService.execute``), a binary answer streamed to a sink, and the async
job (``proxy.async_calls``). So each rule below holds on all of them by construction:

- the request goes out with the target's current credential; for an ``oauth2`` target the
  ``TokenBroker`` supplies the access token, and an upstream 401 gets one refresh and one retry
  (never a loop: a second 401 goes back to the caller);
- when the target scrubs echoed secrets, an answer whose Content-Encoding the egress client
  could not decode is refused (the body would carry an echo past the scrubber);
- headers are filtered and scrubbed, the content type scrubbed;
- the body comes back capped and scrubbed, either whole in memory (``Answer.read``) or as a
  stream of chunks (``Answer.stream``); both give the same bytes for the same body
  (``keyhole.vault.scrub``), a cut body always without the same fixed tail.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType

from keyhole.connections.target import HttpTarget
from keyhole.egress import EgressClient, UpstreamResponse, read_capped
from keyhole.egress.capped_body import CappedBody
from keyhole.egress.client import Exchange
from keyhole.errors import KeyholeError, UpstreamUnreachable
from keyhole.oauth.refresh import OAUTH2, TokenBroker
from keyhole.proxy.request import ProxyCall, UpstreamRequest, build_upstream
from keyhole.proxy.response import opaque_coding, shape_head
from keyhole.vault.scrub import NO_SECRETS, Scrubber


class BodyStream:
    """An answer's body as scrubbed chunks, at most ``cap`` upstream bytes, one chunk in memory.

    After iteration: ``truncated`` (the upstream had more), ``size`` (the bytes yielded, i.e.
    what the caller gets: counting before scrubbing would tell an echoed secret's length) and
    ``failure`` (the upstream broke off: a sink that aborted because of it should report this)."""

    __slots__ = ("_cap", "_response", "_scrubber", "failure", "size", "truncated")

    def __init__(self, response: UpstreamResponse, cap: int, scrubber: Scrubber) -> None:
        self._response = response
        self._cap = cap
        self._scrubber = scrubber
        self.truncated = False
        self.size = 0
        self.failure: KeyholeError | None = None

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        body = CappedBody(self._response, self._cap)
        scrubber = self._scrubber.stream()
        try:
            async for chunk in body.chunks():
                safe = scrubber.feed(chunk)
                if safe:
                    self.size += len(safe)
                    yield safe
        except KeyholeError as error:
            self.failure = error
            raise
        self.truncated = body.truncated
        tail = scrubber.finish(truncated=body.truncated)
        if tail:
            self.size += len(tail)
            yield tail


class Answer:
    """An upstream answer whose head is shaped and whose body is still to be read."""

    __slots__ = ("_response", "_scrubber", "content_type", "headers", "method", "status")

    def __init__(self, method: str, response: UpstreamResponse, scrubber: Scrubber) -> None:
        self.method = method
        self.status = response.status
        self.headers, self.content_type = shape_head(response.headers, scrubber)
        self._response = response
        self._scrubber = scrubber

    async def read(self, cap: int) -> tuple[bytes, bool]:
        """The body in memory, scrubbed, from at most ``cap`` upstream bytes; True when cut."""
        raw, truncated = await read_capped(self._response, cap)
        return self._scrubber.scrub(raw, truncated=truncated), truncated

    def stream(self, cap: int) -> BodyStream:
        return BodyStream(self._response, cap, self._scrubber)


class UpstreamReader:
    def __init__(self, egress: EgressClient, oauth: TokenBroker | None) -> None:
        self._egress = egress
        self._oauth = oauth  # injects OAuth2 access tokens (refreshing them) and handles 401s

    def open(
        self,
        target: HttpTarget,
        call: ProxyCall,
        upstream: UpstreamRequest,
        *,
        deadline_ms: int | None = None,
    ) -> Opening:
        """Send ``upstream`` (``call`` built for ``target``); the async context manager yields
        the answer and releases the connection on exit. ``deadline_ms`` makes it a long stream:
        ``target``'s timeout then bounds each wait for data and ``deadline_ms`` the whole exchange."""
        oauth = self._oauth if target.auth_type == OAUTH2 else None
        return Opening(self._egress, oauth, target, call, upstream, deadline_ms)


class Opening:
    """One exchange, or two for an ``oauth2`` target whose token the upstream refused: one refresh
    and one retry, never a loop (a second 401 goes back to the caller). A class rather than a
    generator-based context manager: this is every proxy call's path."""

    __slots__ = ("_call", "_deadline_ms", "_egress", "_exchange", "_oauth", "_target", "_upstream")

    def __init__(
        self,
        egress: EgressClient,
        oauth: TokenBroker | None,
        target: HttpTarget,
        call: ProxyCall,
        upstream: UpstreamRequest,
        deadline_ms: int | None,
    ) -> None:
        self._egress = egress
        self._oauth = oauth
        self._target = target
        self._call = call
        self._upstream = upstream
        self._deadline_ms = deadline_ms
        self._exchange: Exchange | None = None

    async def __aenter__(self) -> Answer:
        oauth, target, upstream = self._oauth, self._target, self._upstream
        if oauth is not None:
            target = await oauth.authorize(target)
            upstream = build_upstream(target, self._call)
        exchange = self._exchange = self._request(target, upstream)
        response = await exchange.__aenter__()  # a failed enter releases the exchange itself
        if oauth is not None and response.status == 401:
            self._exchange = None
            await exchange.__aexit__(None, None, None)
            target = await oauth.after_unauthorized(target)
            upstream = build_upstream(target, self._call)
            exchange = self._exchange = self._request(target, upstream)
            response = await exchange.__aenter__()
        try:
            return _answer(target, upstream.method, response)
        except BaseException:
            self._exchange = None
            await exchange.__aexit__(None, None, None)
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._exchange is not None:
            await self._exchange.__aexit__(exc_type, exc, tb)

    def _request(self, target: HttpTarget, upstream: UpstreamRequest) -> Exchange:
        url = target.url_for(upstream.url_path, upstream.encoded_query, upstream.origin)
        timeout_ms = target.limits.timeout_ms
        organization = target.organization_id
        if self._deadline_ms is None:
            return self._egress.request(
                upstream.method,
                url,
                headers=upstream.headers,
                data=upstream.body,
                timeout_ms=timeout_ms,
                organization=organization,
            )
        return self._egress.stream(
            upstream.method,
            url,
            headers=upstream.headers,
            timeout_ms=timeout_ms,
            deadline_ms=self._deadline_ms,
            organization=organization,
        )


def _answer(target: HttpTarget, method: str, response: UpstreamResponse) -> Answer:
    scrubber = target.scrubber if target.limits.scrub_echoed_secrets else NO_SECRETS
    if scrubber:
        coding = opaque_coding(response.headers)
        if coding is not None:
            raise UpstreamUnreachable(
                f"the upstream answered with Content-Encoding {coding[:64]!r}, which the proxy "
                "cannot decode to scrub echoed credentials; ask for gzip, deflate or identity",
                key="upstream_encoding_unsupported",
            )
    return Answer(method, response, scrubber)
