"""Async proxy calls: a GET accepted now, run as a ``connectionproxy`` job, its body streamed
into the blob store and fetched later through a short-lived download URL.

Submission passes exactly the checks of a synchronous call (proxy enabled, request contract,
organization and connection rate limits). The job rebuilds the upstream request from the
caller's call and the connection's *current* credential (the payload never holds one) and reads
the upstream through the same pipeline as a synchronous call (``proxy.upstream``: OAuth2 token
and 401 retry, encoding refusal, header filtering, echo scrubbing), streaming the body into a
blob under ``max_async_body_bytes``. One audit record per call, written by whichever process
ends the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import yarl

from keyhole.audit.records import redacted_path
from keyhole.blobs import BlobStore
from keyhole.connections.service import ConnectionService
from keyhole.connections.target import HttpTarget
from keyhole.errors import CallField, Conflict, Gone, InvalidRequest, KeyholeError, call_error
from keyhole.jobs import JobFailure, JobStatus, JobView, ListedJob, RunningJob
from keyhole.jobs.service import JobService
from keyhole.proxy.request import ProxyCall, UpstreamRequest, build_upstream
from keyhole.proxy.service import CallTrace, ProxyService
from keyhole.tenancy.keys import KeyKind
from keyhole.tenancy.principal import Principal

CONNECTION_PROXY = "connectionproxy"


@dataclass(frozen=True, slots=True)
class AsyncSubmission:
    call_id: str
    job: JobView


@dataclass(frozen=True, slots=True)
class AsyncCallResult:
    """A finished async call, as the caller sees it (the body behind a fresh download URL)."""

    status: int
    headers: dict[str, str]
    content_type: str
    content_length: int
    latency_ms: int
    truncated: bool
    call_id: str
    body_download_url: str | None
    body_url_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class AsyncCallSummary:
    """An async call as its owner's listing shows it: never its body nor a download URL."""

    job_id: str
    status: JobStatus
    connection_id: str | None
    path: str | None  # the path the caller asked for, without its query
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    upstream_status: int | None  # once done
    content_type: str | None  # of the stored body, once done
    size: int | None  # bytes of the stored body, once done
    truncated: bool


@dataclass(frozen=True, slots=True)
class AsyncCallPage:
    """One page of the caller's async calls, newest first, with the cursors around it."""

    calls: list[AsyncCallSummary]
    older: str | None
    newer: str | None


def _summary(job: ListedJob) -> AsyncCallSummary:
    view, stored = job.view, job.view.result or {}
    done = view.status == JobStatus.DONE
    connection_id, path = job.payload.get("connection_id"), job.payload.get("path")
    return AsyncCallSummary(
        job_id=view.id,
        status=view.status,
        connection_id=None if connection_id is None else str(connection_id),
        path=None if path is None else str(path),
        created_at=view.created_at,
        finished_at=view.finished_at,
        error=view.error,
        upstream_status=int(stored["status"]) if done and "status" in stored else None,
        content_type=str(stored["contentType"]) if done and stored.get("contentType") else None,
        size=int(stored.get("contentLength", 0)) if done else None,
        truncated=bool(stored.get("truncated", False)),
    )


def _payload(
    principal: Principal, target: HttpTarget, call: ProxyCall, call_id: str, dialect: str
) -> dict[str, Any]:
    return {
        "connection_id": target.connection_id,
        "parent_connection_id": target.parent_connection_id,
        "call_id": call_id,
        "dialect": dialect,
        "principal": {"key_id": principal.key_id, "kind": principal.kind, "user_id": principal.user_id},
        "method": call.method,
        "path": call.path,
        "headers": dict(call.headers),
        "query": None if call.query is None else [list(pair) for pair in call.query],
        "raw_query": call.raw_query,
        "origin": None if call.origin is None else str(call.origin),
    }


def _call(payload: dict[str, Any]) -> ProxyCall:
    query = payload.get("query")
    origin = payload.get("origin")
    return ProxyCall(
        method=str(payload["method"]),
        path=str(payload["path"]),
        headers=dict(payload.get("headers") or {}),
        query=None if query is None else [(str(name), str(value)) for name, value in query],
        raw_query=payload.get("raw_query"),
        origin=None if origin is None else yarl.URL(origin),
    )


def _principal(job: RunningJob) -> Principal:
    who = job.payload.get("principal") or {}
    return Principal(
        organization_id=job.organization_id,
        key_id=str(who.get("key_id", "")),
        kind=cast(KeyKind, who.get("kind", "user")),
        user_id=who.get("user_id"),
    )


class AsyncProxy:
    def __init__(
        self,
        proxy: ProxyService,
        connections: ConnectionService,
        blobs: BlobStore,
        jobs: JobService,
        *,
        deadline_seconds: int,
    ) -> None:
        self._proxy = proxy
        self._connections = connections
        self._blobs = blobs
        self._jobs = jobs
        self._deadline_ms = deadline_seconds * 1000

    # -- the API side --------------------------------------------------------------------------

    async def submit(
        self,
        principal: Principal,
        target: HttpTarget,
        call: Callable[[], ProxyCall] | ProxyCall,
        *,
        dialect: str,
    ) -> AsyncSubmission:
        """Accept a GET as a job, after the same checks and rate limits as a synchronous call."""
        trace = CallTrace.begin(dialect)
        try:
            self._proxy.check_enabled(target)
            request = trace.request = call() if callable(call) else call
            upstream = trace.upstream = build_upstream(target, request)
            if upstream.method != "GET":
                raise InvalidRequest(
                    f"async calls must use GET (got {upstream.method}); send other methods without async",
                    key="async_requires_get",
                    metadata={"field": "async"},
                )
            if request.body is not None:
                raise call_error(
                    InvalidRequest,
                    CallField.BODY,
                    "async GET calls cannot carry a body; leave ",
                    CallField.BODY,
                    " out",
                    key="async_requires_get",
                )
            await self._proxy.check_limits(principal, target)
            job = await self._jobs.submit(
                principal, CONNECTION_PROXY, _payload(principal, target, request, trace.call_id, dialect)
            )
        except KeyholeError as error:
            error.metadata.setdefault("proxyCallId", trace.call_id)
            self._proxy.record(principal, target, trace, error)
            raise
        return AsyncSubmission(trace.call_id, job)

    async def result(self, job: JobView, base_url: str) -> AsyncCallResult | None:
        """The finished call of a ``done`` job, with a freshly signed body URL; None otherwise."""
        stored = job.result
        if job.status != JobStatus.DONE or stored is None:
            return None
        blob = await self._blobs.get(str(stored.get("blobId", "")))
        url, expires_at = await self._blobs.download_url(blob, base_url) if blob is not None else (None, None)
        return AsyncCallResult(
            status=int(stored["status"]),
            headers=dict(stored.get("headers") or {}),
            content_type=str(stored.get("contentType", "")),
            content_length=int(stored.get("contentLength", 0)),
            latency_ms=int(stored.get("latencyMs", 0)),
            truncated=bool(stored.get("truncated", False)),
            call_id=str(stored.get("proxyCallId", "")),
            body_download_url=url,
            body_url_expires_at=expires_at,
        )

    async def calls(
        self, principal: Principal, *, limit: int = 25, before: str | None = None, after: str | None = None
    ) -> AsyncCallPage:
        """The caller's own async calls (never another principal's), newest first."""
        page = await self._jobs.list_owned(
            principal, CONNECTION_PROXY, limit=limit, before=before, after=after
        )
        return AsyncCallPage([_summary(job) for job in page.jobs], page.older, page.newer)

    async def body_url(self, principal: Principal, job_id: str, base_url: str) -> tuple[str, datetime]:
        """A freshly signed, short-lived URL of the body of the caller's own finished call, and
        when it stops working: 404 for anyone else's, 409 before it is done, 410 once it is gone."""
        view = await self._jobs.get(principal, CONNECTION_PROXY, job_id, owner_only=True)
        if view.status != JobStatus.DONE:
            raise Conflict(
                f"async call {view.id} is {view.status.value}; only a finished call has a body to download",
                key="job_not_done",
                metadata={"status": view.status.value},
            )
        finished = await self.result(view, base_url)
        if finished is None or finished.body_download_url is None or finished.body_url_expires_at is None:
            raise Gone(f"the body of async call {view.id} is no longer stored", key="job_body_gone")
        return finished.body_download_url, finished.body_url_expires_at

    # -- the job (JobHandler) ------------------------------------------------------------------

    async def run(self, job: RunningJob) -> dict[str, Any]:
        started = time.perf_counter()
        target = await self._connections.http_target(job.organization_id, str(job.payload["connection_id"]))
        self._proxy.check_enabled(target)
        call = _call(job.payload)
        upstream = build_upstream(target, call)
        async with self._proxy.upstream.open(target, call, upstream, deadline_ms=self._deadline_ms) as answer:
            body = answer.stream(target.limits.max_async_body_bytes)
            try:
                blob = await self._blobs.put_stream(
                    f"{job.organization_id}/jobs/{job.id}/body-{job.attempt}",
                    body.chunks(),
                    organization_id=job.organization_id,
                    content_type=answer.content_type or "application/octet-stream",
                    expires_at=job.expires_at,
                )
            except KeyholeError:
                if body.failure is not None:  # the upstream broke off: report that, not the aborted write
                    raise body.failure from None
                raise
        return {
            "status": answer.status,
            "headers": answer.headers,
            "contentType": answer.content_type,
            "contentLength": blob.size,
            "latencyMs": int((time.perf_counter() - started) * 1000),
            "truncated": body.truncated,
            "proxyCallId": job.payload["call_id"],
            "blobId": blob.id,
            # For the audit record; credential query values already redacted.
            "auditPath": redacted_path(upstream.url_path, upstream.encoded_query, target.credential_query),
        }

    async def finished(self, job: RunningJob, view: JobView, failure: JobFailure | None) -> None:
        """The call's one audit record, written when its job ends (whatever ended it)."""
        if not job.payload:
            return
        stored = view.result or {}
        # Nothing awaited between the job's end and its record: a process killed right after
        # the job ended has its record in the audit spool already.
        parent = job.payload.get("parent_connection_id")
        target = _FinishedCall(str(job.payload["connection_id"]), None if parent is None else str(parent))
        audit_path = stored.get("auditPath")
        trace = CallTrace(
            call_id=str(job.payload["call_id"]),
            dialect=str(job.payload.get("dialect", "polytomic")),
            started=time.perf_counter() - stored.get("latencyMs", 0) / 1000,
            request=_call(job.payload),
            upstream=None if audit_path is None else UpstreamRequest("GET", str(audit_path), "", {}, None),
            status=stored.get("status"),
            bytes_out=int(stored.get("contentLength", 0)),
            truncated=bool(stored.get("truncated", False)),
        )
        error = None if failure is None else KeyholeError(failure.message, key=failure.key)
        self._proxy.record(_principal(job), target, trace, error)

    async def discard(self, job: RunningJob, result: dict[str, Any]) -> None:
        blob = await self._blobs.get(str(result.get("blobId", "")))
        if blob is not None:
            await self._blobs.delete(blob.key)


__all__ = [
    "CONNECTION_PROXY",
    "AsyncCallPage",
    "AsyncCallResult",
    "AsyncCallSummary",
    "AsyncProxy",
    "AsyncSubmission",
]


@dataclass(frozen=True, slots=True)
class _FinishedCall:
    """The target as the audit record of a finished call names it (its path is redacted)."""

    connection_id: str
    parent_connection_id: str | None
    credential_query: Mapping[str, str] = field(default_factory=dict)
