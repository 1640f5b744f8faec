"""How many upstream exchanges run at once: in all, per origin and per organization.

A call takes a slot of each of its scopes together, or none: holding one while waiting for
another would let a saturated origin block its organization's calls to other origins, or one
organization block everybody's calls to an origin. A call that cannot start at once waits, within
its own deadline, behind at most as many waiting calls as its scope runs at once; past that it is
refused at once with ``Retry-After``, so nothing queues without bound. A freed slot goes to the
oldest waiting call that fits before any new call can take it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TypeVar

from keyhole.egress import metrics
from keyhole.errors import EgressSaturated, KeyholeError, RateLimited, UpstreamTimeout

Origin = tuple[str, str, int]  # scheme, host as in the URL, port
RETRY_AFTER_SECONDS = 1
_Scope = TypeVar("_Scope", Origin, str)


@dataclass(frozen=True, slots=True)
class EgressLimits:
    """Exchanges in flight at once: in all, to one origin, for one organization."""

    in_flight: int = 256
    per_origin: int = 128
    per_organization: int = 64


class Capacity:
    __slots__ = (
        "_limits",
        "_organizations",
        "_origins",
        "_total",
        "_waiting",
        "_waiting_organizations",
        "_waiting_origins",
    )

    def __init__(self, limits: EgressLimits) -> None:
        self._limits = limits
        self._total = 0
        self._origins: dict[Origin, int] = {}
        self._organizations: dict[str, int] = {}
        self._waiting: dict[asyncio.Future[None], tuple[Origin, str | None]] = {}  # oldest first
        self._waiting_origins: dict[Origin, int] = {}
        self._waiting_organizations: dict[str, int] = {}
        metrics.IN_FLIGHT.set_function(lambda: self._total)
        metrics.WAITING.set_function(lambda: len(self._waiting))

    def take(self, origin: Origin, organization: str | None) -> bool:
        """Take a slot of every scope if each has room; ``release`` gives them back."""
        limits = self._limits
        if self._total >= limits.in_flight:
            return False
        origins = self._origins
        at_origin = origins.get(origin, 0)
        if at_origin >= limits.per_origin:
            return False
        if organization is not None:
            organizations = self._organizations
            at_organization = organizations.get(organization, 0)
            if at_organization >= limits.per_organization:
                return False
            organizations[organization] = at_organization + 1
        origins[origin] = at_origin + 1
        self._total += 1
        return True

    async def wait(self, origin: Origin, organization: str | None, until: float, budget_ms: int) -> None:
        """Wait for the slots ``take`` refused until the loop time ``until``: refused at once when
        too many calls already wait, ``UpstreamTimeout`` when ``until`` passes first."""
        self._refuse_if_queue_full(origin, organization)
        metrics.WAITS.labels(self._blocking(origin, organization)[0]).inc()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting[waiter] = (origin, organization)
        _count(self._waiting_origins, origin, 1)
        if organization is not None:
            _count(self._waiting_organizations, organization, 1)
        timer = loop.call_at(until, self._expire, waiter, budget_ms)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(origin, organization)  # granted just as the call was cancelled
            else:
                self._dequeue(waiter)
            raise
        finally:
            timer.cancel()

    def release(self, origin: Origin, organization: str | None) -> None:
        self._total -= 1
        _count(self._origins, origin, -1)
        if organization is not None:
            _count(self._organizations, organization, -1)
        if self._waiting:
            self._grant()

    def _grant(self) -> None:
        for waiter, (origin, organization) in list(self._waiting.items()):
            if self._total >= self._limits.in_flight:
                return
            if not waiter.done() and self.take(origin, organization):
                self._dequeue(waiter)
                waiter.set_result(None)

    def _expire(self, waiter: asyncio.Future[None], budget_ms: int) -> None:
        entry = self._dequeue(waiter)
        if entry is None or waiter.done():
            return
        scope, limit, holder = self._blocking(*entry)
        metrics.WAIT_TIMEOUTS.labels(scope).inc()
        waiter.set_exception(
            UpstreamTimeout(
                f"timed out after {budget_ms} ms waiting for a free upstream slot ({holder} already "
                f"had {limit} calls in flight, its limit); the request was not sent",
                metadata={"scope": scope, "limit": limit},
            )
        )

    def _refuse_if_queue_full(self, origin: Origin, organization: str | None) -> None:
        limits = self._limits
        per_origin, per_organization = limits.per_origin, limits.per_organization
        if self._origins.get(origin, 0) >= per_origin and self._waiting_origins.get(origin, 0) >= per_origin:
            raise _refusal(
                EgressSaturated,
                f"{_describe(origin)} already has {per_origin} calls in flight and {per_origin} more "
                "waiting, the most Keyhole sends to one origin",
                "origin",
                per_origin,
                "origin_saturated",
            )
        if (
            organization is not None
            and self._organizations.get(organization, 0) >= per_organization
            and self._waiting_organizations.get(organization, 0) >= per_organization
        ):
            raise _refusal(
                RateLimited,
                f"this organization already has {per_organization} upstream calls in flight and "
                f"{per_organization} more waiting, its limit; send fewer calls at once",
                "organization",
                per_organization,
                "organization_concurrency_limited",
            )
        if len(self._waiting) >= limits.in_flight:
            raise _refusal(
                EgressSaturated,
                f"{limits.in_flight} upstream calls already wait for a free slot, the most Keyhole queues",
                "global",
                limits.in_flight,
                "egress_saturated",
            )

    def _blocking(self, origin: Origin, organization: str | None) -> tuple[str, int, str]:
        """The scope at its limit that keeps a waiting call from starting: scope, limit, holder."""
        limits = self._limits
        if self._origins.get(origin, 0) >= limits.per_origin:
            return "origin", limits.per_origin, _describe(origin)
        if organization is not None and self._organizations.get(organization, 0) >= limits.per_organization:
            return "organization", limits.per_organization, "this organization"
        return "global", limits.in_flight, "Keyhole"

    def _dequeue(self, waiter: asyncio.Future[None]) -> tuple[Origin, str | None] | None:
        entry = self._waiting.pop(waiter, None)
        if entry is not None:
            origin, organization = entry
            _count(self._waiting_origins, origin, -1)
            if organization is not None:
                _count(self._waiting_organizations, organization, -1)
        return entry


def _count(counts: dict[_Scope, int], scope: _Scope, change: int) -> None:
    """Add ``change``; a scope at zero is dropped, so the maps hold only busy scopes."""
    count = counts.get(scope, 0) + change
    if count:
        counts[scope] = count
    else:
        del counts[scope]


def _describe(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _refusal(kind: type[KeyholeError], reason: str, scope: str, limit: int, key: str) -> KeyholeError:
    metrics.REFUSALS.labels(scope).inc()
    return kind(
        f"{reason}; retry after {RETRY_AFTER_SECONDS}s",
        key=key,
        retry_after=RETRY_AFTER_SECONDS,
        metadata={"scope": scope, "limit": limit},
    )
