"""Calls per connection and hour over the last day: what the console's activity chart draws.

A busy day is a hundred thousand rows to group (a few hundred milliseconds), but an hour that
ended a while ago no longer changes: a call's record reaches the store within a flush interval.
So each process keeps an organization's settled hours and asks the store only for the hours
since, in one grouped query over the (organization_id, created_at) index. The settled hours are
read afresh every ``REREAD``, which also takes in records that reached the store late (a stopped
process's spool, a store that was down).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
DAY_HOURS = 24
REREAD = timedelta(minutes=15)
MAX_ORGANIZATIONS = 32  # settled hours kept per process (a busy organization's are a few MB)


@dataclass(frozen=True, slots=True)
class HourCount:
    connection_id: str
    hour: datetime  # the hour's start, UTC
    calls: int
    upstream_errors: int  # the upstream answered 4xx or 5xx (and Keyhole passed the answer on)
    failed: int  # refused or failed in Keyhole: an outcome other than ok


@dataclass(frozen=True, slots=True)
class LastDay:
    first_hour: datetime  # the oldest of ``DAY_HOURS`` hours; the last one is in progress
    counts: list[HourCount]  # only (connection, hour) pairs that had calls


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(slots=True)
class _Settled:
    read_at: datetime
    until: datetime  # the hours before it are kept in ``counts``
    counts: list[HourCount]


ReadSince = Callable[[str, datetime], Awaitable[list[HourCount]]]


class HourlyCounts:
    """``read(organization_id, since)`` is the grouped query; ``settle`` how long after an hour
    ends its records may still be arriving."""

    def __init__(self, read: ReadSince, *, settle: timedelta) -> None:
        self._read = read
        self._settle = settle
        self._settled: OrderedDict[str, _Settled] = OrderedDict()

    async def last_day(self, organization_id: str, now: datetime) -> LastDay:
        first = hour_of(now) - (DAY_HOURS - 1) * HOUR
        settled_until = hour_of(now - self._settle)
        kept = self._settled.get(organization_id)
        if kept is None or not kept.read_at <= now < kept.read_at + REREAD:
            counts = await self._read(organization_id, first)
            self._keep(organization_id, _Settled(now, settled_until, _before(counts, settled_until)))
            return LastDay(first, counts)
        # The kept hours as they are before the read: a call running meanwhile may move them on,
        # and what it moved would then be counted twice, once kept and once read.
        until, counts = kept.until, kept.counts
        recent = await self._read(organization_id, until)
        older = [count for count in counts if count.hour >= first]
        if self._settled.get(organization_id) is kept:  # not let go or read afresh meanwhile
            if settled_until > kept.until:
                kept.counts, kept.until = older + _before(recent, settled_until), settled_until
            self._settled.move_to_end(organization_id)
        return LastDay(first, older + recent)

    def _keep(self, organization_id: str, settled: _Settled) -> None:
        self._settled[organization_id] = settled
        self._settled.move_to_end(organization_id)
        while len(self._settled) > MAX_ORGANIZATIONS:
            self._settled.popitem(last=False)


def _before(counts: list[HourCount], hour: datetime) -> list[HourCount]:
    return [count for count in counts if count.hour < hour]
