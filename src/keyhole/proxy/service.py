"""The connection proxy: limits, the upstream call through egress, shaping, and the audit record."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from keyhole.audit.records import CallRecord, redacted_path
from keyhole.audit.service import AuditLog, CallStats
from keyhole.connections.service import ConnectionService
from keyhole.connections.target import HttpTarget
from keyhole.egress import EgressClient
from keyhole.errors import Forbidden, KeyholeError, RateLimited
from keyhole.ids import correlation_id
from keyhole.oauth.refresh import TokenBroker
from keyhole.proxy import contract
from keyhole.proxy.binary import BinaryBody, BinarySink, is_binary
from keyhole.proxy.metrics import PROXY_LATENCY, PROXY_RESPONSE_BYTES, count_call
from keyhole.proxy.request import ProxyCall, UpstreamRequest, build_upstream
from keyhole.proxy.response import decode_body
from keyhole.proxy.spill import Spill, read_or_spill, store
from keyhole.proxy.upstream import Answer, UpstreamReader
from keyhole.ratelimit import RateDecision, RateLimiter
from keyhole.store.base import utcnow
from keyhole.tenancy.principal import Principal


@dataclass(frozen=True, slots=True)
class ProxyResult:
    status: int
    body: str
    body_encoding: str  # "utf-8" | "base64"
    content_type: str
    headers: dict[str, str]
    latency_ms: int
    truncated: bool
    call_id: str
    body_bytes: int  # as the caller gets them (after scrubbing: an echo's length must not show)
    binary: BinaryBody | None = None  # set when a sink stored the body (see ``spilled``)
    # True when a Spill stored a body too long to return inline: ``body`` is then its first bytes
    # (``Spill.inline_bytes``) and ``binary`` the whole; False with ``binary`` set: a binary
    # answer, ``body`` empty.
    spilled: bool = False


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    target: HttpTarget
    organization_rate_limit_per_minute: int | None  # None: no limit
    shared_rate_limits: bool  # counted once for every server process (Redis), not per process
    stats: CallStats


@dataclass(slots=True)
class CallTrace:
    """What is known of one proxied call so far: its metrics and audit record are made of it."""

    call_id: str
    dialect: str
    started: float  # perf_counter() when the call began
    request: ProxyCall | None = None  # None until the call is parsed
    upstream: UpstreamRequest | None = None  # None until the contract accepted it
    status: int | None = None  # the upstream's, once it answered
    bytes_out: int = 0
    truncated: bool = False

    @classmethod
    def begin(cls, dialect: str) -> CallTrace:
        return cls(correlation_id(), dialect, time.perf_counter())


class Audited(Protocol):
    """What an audit record needs of a call's target: an ``HttpTarget``, or just the names of a
    finished async call (whose path was redacted when it ran)."""

    @property
    def connection_id(self) -> str: ...

    @property
    def parent_connection_id(self) -> str | None: ...

    @property
    def credential_query(self) -> Mapping[str, str]: ...


def _audited_method(method: object) -> str:
    """A refused call's method as the audit column holds it (eight printable ASCII characters)."""
    if not isinstance(method, str) or not method.isascii() or not method.isprintable():
        return ""
    return method.upper()[:8]


def _result(
    answer: Answer,
    call_id: str,
    started: float,
    body: str,
    encoding: str,
    *,
    truncated: bool,
    size: int,
    stored: BinaryBody | None = None,
    spilled: bool = False,
) -> ProxyResult:
    return ProxyResult(
        status=answer.status,
        body=body,
        body_encoding=encoding,
        content_type=answer.content_type,
        headers=answer.headers,
        latency_ms=int((time.perf_counter() - started) * 1000),
        truncated=truncated,
        call_id=call_id,
        body_bytes=size,
        binary=stored,
        spilled=spilled,
    )


def _safe(method: object) -> bool:
    return isinstance(method, str) and method.upper() in contract.SAFE_METHODS


class ProxyService:
    def __init__(
        self,
        connections: ConnectionService,
        egress: EgressClient,
        limiter: RateLimiter,
        audit: AuditLog,
        *,
        organization_rate_limit_per_minute: int | None,
        oauth: TokenBroker | None = None,
    ) -> None:
        self.upstream = UpstreamReader(egress, oauth)  # the one upstream read, also the async jobs'
        self._connections = connections
        self._limiter = limiter
        self._audit = audit
        self._org_limit = organization_rate_limit_per_minute

    async def target(self, principal: Principal, connection_id: str) -> HttpTarget:
        return await self._connections.http_target(principal.organization_id, connection_id)

    async def execute(
        self,
        principal: Principal,
        target: HttpTarget,
        call: Callable[[], ProxyCall] | ProxyCall,
        *,
        dialect: str,
        binary_sink: BinarySink | None = None,
        spill: Spill | None = None,
    ) -> ProxyResult:
        """Run one proxied call. ``call`` may be a thunk so that parsing errors are audited too.

        With ``binary_sink``, a binary answer streams into the sink (see ``proxy.binary``); with
        ``spill``, an answer longer than its inline bound is stored whole (``proxy.spill``)."""
        trace = CallTrace.begin(dialect)
        try:
            self.check_enabled(target)
            request = trace.request = call() if callable(call) else call
            upstream = trace.upstream = build_upstream(target, request)
            await self.check_limits(principal, target)
            result = await self._call(
                target, request, upstream, trace.call_id, trace.started, binary_sink, spill
            )
            trace.status, trace.truncated = result.status, result.truncated
            trace.bytes_out = result.body_bytes
            self.record(principal, target, trace)
            return result
        except KeyholeError as error:
            error.metadata.setdefault("proxyCallId", trace.call_id)
            if error.status >= 500 and trace.request is not None and not _safe(trace.request.method):
                # The upstream may have acted on it: a client that retries 5xx must not send it again.
                error.headers["x-should-retry"] = "false"
            self.record(principal, target, trace, error)
            raise

    @staticmethod
    def check_enabled(target: HttpTarget) -> None:
        if not target.proxy_enabled:
            raise Forbidden(
                "the proxy is disabled for this connection; enable it with PUT .../proxy/settings",
                key="proxy_disabled",
            )

    async def check_limits(self, principal: Principal, target: HttpTarget) -> None:
        """Take a slot from the organization limiter, then the connection's (a denial takes none)."""
        await self._limit(f"org:{principal.organization_id}", self._org_limit, "organization")
        # Keyed by organization too: inline targets (Composio custom_connection_data) all share
        # the synthetic id "inline", and must not share a limit across organizations. A shared
        # copy counts against its parent's limit: one credential, one budget.
        connection_key = f"conn:{target.credential_organization_id}:{target.credential_connection_id}"
        await self._limit(connection_key, target.limits.rate_limit_per_minute, "connection")

    async def _limit(self, key: str, limit: int | None, scope: str) -> None:
        if limit is None:  # no limit: nothing is counted, nothing is kept
            return
        decision: RateDecision = await self._limiter.hit(key, limit)
        if not decision.allowed:
            raise RateLimited(
                f"{scope} rate limit of {limit} requests per minute exceeded; retry after "
                f"{decision.retry_after}s",
                key=f"{scope}_rate_limited",
                retry_after=decision.retry_after,
                headers=decision.headers(),
                metadata={"scope": scope, "limit": limit},
            )

    async def _call(
        self,
        target: HttpTarget,
        request: ProxyCall,
        upstream: UpstreamRequest,
        call_id: str,
        started: float,
        binary_sink: BinarySink | None,
        spill: Spill | None,
    ) -> ProxyResult:
        limits = target.limits
        async with self.upstream.open(target, request, upstream) as answer:
            if binary_sink is not None and is_binary(answer.content_type, answer.method):
                return await self._store_binary(answer, binary_sink, target, call_id, started)
            if spill is not None:
                return await self._spill(answer, spill, target, call_id, started)
            raw, truncated = await answer.read(limits.max_response_body_bytes)
        body, encoding = decode_body(raw, answer.content_type, truncated=truncated)
        return _result(answer, call_id, started, body, encoding, truncated=truncated, size=len(raw))

    @staticmethod
    async def _store_binary(
        answer: Answer, sink: BinarySink, target: HttpTarget, call_id: str, started: float
    ) -> ProxyResult:
        body = answer.stream(target.limits.max_async_body_bytes)
        stored = await store(
            body,
            body.chunks(),
            sink,
            content_type=answer.content_type,
            organization_id=target.organization_id,
            call_id=call_id,
        )
        return _result(
            answer, call_id, started, "", "base64", truncated=body.truncated, size=body.size, stored=stored
        )

    @staticmethod
    async def _spill(
        answer: Answer, spill: Spill, target: HttpTarget, call_id: str, started: float
    ) -> ProxyResult:
        kept = await read_or_spill(
            answer,
            spill,
            target.limits.max_async_body_bytes,
            organization_id=target.organization_id,
            call_id=call_id,
        )
        spilled = kept.stored is not None
        body, encoding = decode_body(kept.head, answer.content_type, truncated=kept.truncated or spilled)
        return _result(
            answer,
            call_id,
            started,
            body,
            encoding,
            truncated=kept.truncated,
            size=kept.size,
            stored=kept.stored,
            spilled=spilled,
        )

    def record(
        self, principal: Principal, target: Audited, trace: CallTrace, error: KeyholeError | None = None
    ) -> None:
        """Count the call and audit it (also the async proxy's record of a job's call)."""
        latency = time.perf_counter() - trace.started
        outcome = "ok" if error is None else error.key
        count_call(trace.dialect, outcome)
        upstream, request = trace.upstream, trace.request
        if trace.status is not None:
            PROXY_LATENCY.observe(latency)
            PROXY_RESPONSE_BYTES.inc(trace.bytes_out)
        if upstream is not None:
            method = upstream.method
            path = redacted_path(upstream.url_path, upstream.encoded_query, target.credential_query)
        elif request is not None:  # refused by the contract: keep what the caller asked for
            method = _audited_method(request.method)
            path = str(request.path)[:2048]
        else:
            method = path = ""
        self._audit.record(
            CallRecord(
                id=trace.call_id,
                organization_id=principal.organization_id,
                connection_id=target.connection_id,
                parent_connection_id=target.parent_connection_id,
                principal_id=principal.id,
                dialect=trace.dialect,
                method=method,
                path=path,
                upstream_status=trace.status,
                latency_ms=int(latency * 1000),
                bytes_in=len(upstream.body) if upstream is not None and upstream.body else 0,
                bytes_out=trace.bytes_out,
                truncated=trace.truncated,
                outcome=outcome,
                error_message=None if error is None else error.message[:1000],
                created_at=utcnow(),
            )
        )

    async def info(self, principal: Principal, connection_id: str) -> ProxyInfo:
        return await self.info_for(await self.target(principal, connection_id))

    async def info_for(self, target: HttpTarget) -> ProxyInfo:
        stats = await self._audit.stats(target.organization_id, target.connection_id)
        return ProxyInfo(target, self._org_limit, self._limiter.shared, stats)
