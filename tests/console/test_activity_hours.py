"""The numbers behind the activity chart: the grouped statement on SQLite and PostgreSQL (its
counts, and a range of the organization index however the planner is informed), and the settled
hours a process keeps so that a busy day is not grouped again on every page."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from conftest import fresh_postgres_database
from keyhole.audit.hours import DAY_HOURS, HOUR, MAX_ORGANIZATIONS, REREAD, HourCount, HourlyCounts, hour_of
from keyhole.audit.records import CallRecord
from keyhole.audit.repository import AuditRepository, hourly_counts_statement
from keyhole.store.database import Database
from keyhole.store.migrate import upgrade

ORGANIZATION = str(uuid.uuid4())
CONNECTIONS = [str(uuid.uuid4()) for _ in range(50)]  # enough for SQLite to weigh a skip-scan
NOW = datetime(2025, 3, 30, 14, 52, 7, 123456, tzinfo=UTC)
SETTLE = timedelta(minutes=2)


def _record(number: int, created_at: datetime, organization_id: str = ORGANIZATION) -> CallRecord:
    """Every third call answered 404 upstream, every fifth refused in Keyhole (no answer)."""
    refused = number % 5 == 0
    status = None if refused else (404 if number % 3 == 0 else 200)
    return CallRecord(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        connection_id=CONNECTIONS[number % len(CONNECTIONS)],
        parent_connection_id=None,
        principal_id="tester",
        dialect="console",
        method="GET",
        path=f"/n/{number}",
        upstream_status=status,
        latency_ms=1,
        bytes_in=0,
        bytes_out=0,
        truncated=False,
        outcome="locked_header" if refused else "ok",
        error_message="refused" if refused else None,
        created_at=created_at,
    )


def _records() -> list[CallRecord]:
    """A call a minute over 33 hours, one exactly on an hour, and one of another organization:
    the statement must count each once, in its UTC hour."""
    made = [_record(number, NOW - timedelta(minutes=number)) for number in range(2000)]
    made.append(_record(1000, hour_of(NOW) - 3 * HOUR))
    made.append(_record(1001, NOW, organization_id=str(uuid.uuid4())))
    return made


def _expected(records: list[CallRecord], since: datetime) -> set[HourCount]:
    counted: Counter[tuple[str, datetime, str]] = Counter()
    for record in records:
        if record.organization_id != ORGANIZATION or record.created_at < since:
            continue
        key = (record.connection_id, hour_of(record.created_at.astimezone(UTC)))
        counted[(*key, "calls")] += 1
        if record.outcome != "ok":
            counted[(*key, "failed")] += 1
        elif record.upstream_status is not None and record.upstream_status >= 400:
            counted[(*key, "upstream")] += 1
    keys = {(connection, hour) for connection, hour, _ in counted}
    return {
        HourCount(c, h, counted[(c, h, "calls")], counted[(c, h, "upstream")], counted[(c, h, "failed")])
        for c, h in keys
    }


async def _filled(url: str) -> tuple[AuditRepository, list[CallRecord]]:
    await upgrade(url)
    repository = AuditRepository(Database(url))
    records = _records()
    await repository.insert(records)
    return repository, records


async def _assert_counts(repository: AuditRepository, records: list[CallRecord]) -> None:
    for since in (hour_of(NOW) - (DAY_HOURS - 1) * HOUR, hour_of(NOW) - HOUR, NOW + HOUR):
        counts = await repository.hourly_counts(ORGANIZATION, since)
        assert len(counts) == len(set(counts))
        assert set(counts) == _expected(records, since)
        assert all(count.hour.tzinfo is UTC for count in counts)


async def test_the_grouped_statement_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    repository, records = await _filled(url)
    await _assert_counts(repository, records)
    statement = hourly_counts_statement(ORGANIZATION, NOW, sqlite=True).compile(dialect=sqlite.dialect())
    parameters = [statement.params[name] for name in statement.positiontup or ()]
    with sqlite3.connect(tmp_path / "audit.db") as db:
        for informed in (False, True):  # before and after ANALYZE gave the planner statistics
            if informed:
                db.execute("ANALYZE")
            plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            assert plan[0] == (
                "SEARCH proxy_calls USING INDEX ix_proxy_calls_organization_created "
                "(organization_id=? AND created_at>?)"
            ), plan


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database("keyhole_hours") as name:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@pytest.mark.postgres
async def test_the_grouped_statement_on_postgres(postgres_url: str) -> None:
    repository, records = await _filled(postgres_url)
    await _assert_counts(repository, records)
    dialect = make_url("postgresql+asyncpg://").get_dialect()()
    statement = hourly_counts_statement(ORGANIZATION, NOW, sqlite=False).compile(dialect=dialect)
    connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        await connection.execute("ANALYZE proxy_calls")
        await connection.execute("SET enable_seqscan = off")  # a test table is too small to bother
        named = {name: f"${number}" for number, name in enumerate(statement.params, 1)}
        text = str(statement) % named
        plan = "\n".join(
            row[0] for row in await connection.fetch(f"EXPLAIN {text}", *statement.params.values())
        )
    finally:
        await connection.close()
    assert "ix_proxy_calls_organization_created" in plan, plan
    [bounds] = [line for line in plan.splitlines() if "Index Cond:" in line]
    assert "organization_id" in bounds and "created_at >=" in bounds, plan


class _Store:
    """The grouped statement over calls held in memory: what the kept hours are checked against."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, datetime]] = []  # organization, connection, time
        self.reads: list[datetime] = []

    def add(self, moment: datetime, organization_id: str = ORGANIZATION, connection_id: str = "c") -> None:
        self.calls.append((organization_id, connection_id, moment))

    async def read(self, organization_id: str, since: datetime) -> list[HourCount]:
        self.reads.append(since)
        counted = Counter(
            (connection, hour_of(moment))
            for organization, connection, moment in self.calls
            if organization == organization_id and moment >= since
        )
        return [HourCount(connection, hour, calls, 0, 0) for (connection, hour), calls in counted.items()]


def _totals(counts: list[HourCount]) -> dict[datetime, int]:
    """Calls per hour, summed: an hour counted twice shows as twice its calls."""
    totals: Counter[datetime] = Counter()
    for count in counts:
        totals[count.hour] += count.calls
    return dict(totals)


async def test_settled_hours_are_read_once_then_only_the_hours_since() -> None:
    store = _Store()
    hours = HourlyCounts(store.read, settle=SETTLE)
    first = hour_of(NOW) - (DAY_HOURS - 1) * HOUR
    for offset in (0, 1, 5, 23, 25):  # the one 25 hours back is outside the day
        store.add(NOW - offset * HOUR)
    day = await hours.last_day(ORGANIZATION, NOW)
    assert day.first_hour == first and store.reads == [first]
    assert _totals(day.counts) == {hour_of(NOW - offset * HOUR): 1 for offset in (0, 1, 5, 23)}

    store.add(NOW + timedelta(minutes=1))
    later = await hours.last_day(ORGANIZATION, NOW + timedelta(minutes=2))
    assert store.reads[-1] == hour_of(NOW)  # only the hour in progress is grouped again
    assert _totals(later.counts)[hour_of(NOW)] == 2
    assert sum(_totals(later.counts).values()) == 5

    next_hour = hour_of(NOW) + HOUR
    store.add(next_hour + timedelta(seconds=30))
    moved = await hours.last_day(ORGANIZATION, next_hour + timedelta(minutes=1))
    assert store.reads[-1] == hour_of(NOW)  # the hour that just ended may still be filling up
    expected = {hour_of(NOW - 1 * HOUR): 1, hour_of(NOW - 5 * HOUR): 1, hour_of(NOW): 2, next_hour: 1}
    assert _totals(moved.counts) == expected  # the call 23 hours back has left the day
    settled = await hours.last_day(ORGANIZATION, next_hour + SETTLE + timedelta(minutes=1))
    assert store.reads[-1] == hour_of(NOW) and _totals(settled.counts) == expected
    after = await hours.last_day(ORGANIZATION, next_hour + SETTLE + timedelta(minutes=2))
    assert store.reads[-1] == next_hour and _totals(after.counts) == expected


async def test_a_record_stored_late_shows_after_the_next_full_read() -> None:
    store = _Store()
    hours = HourlyCounts(store.read, settle=SETTLE)
    await hours.last_day(ORGANIZATION, NOW)
    store.add(NOW - 3 * HOUR)  # a settled hour: a stopped process's spool delivered it late
    assert _totals((await hours.last_day(ORGANIZATION, NOW + timedelta(minutes=1))).counts) == {}
    reread = await hours.last_day(ORGANIZATION, NOW + REREAD)
    assert store.reads[-1] == hour_of(NOW + REREAD) - (DAY_HOURS - 1) * HOUR
    assert _totals(reread.counts) == {hour_of(NOW - 3 * HOUR): 1}


async def test_organizations_are_kept_apart_and_few() -> None:
    store = _Store()
    hours = HourlyCounts(store.read, settle=SETTLE)
    organizations = [str(uuid.uuid4()) for _ in range(MAX_ORGANIZATIONS + 1)]
    for number, organization in enumerate(organizations):
        store.add(NOW - HOUR, organization, f"c{number}")
        day = await hours.last_day(organization, NOW)
        assert [count.connection_id for count in day.counts] == [f"c{number}"]
    first = hour_of(NOW) - (DAY_HOURS - 1) * HOUR
    reads = len(store.reads)
    await hours.last_day(organizations[-1], NOW)
    assert store.reads[reads:] == [hour_of(NOW - SETTLE)]  # still kept
    await hours.last_day(organizations[0], NOW)
    assert store.reads[reads + 1 :] == [first]  # the least recent was let go


class _HeldStore(_Store):
    """A store whose next read, once armed, waits until released: a page that reads while
    others come and go."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self._release: asyncio.Event | None = None

    def hold_next_read(self) -> asyncio.Event:
        self.reading.clear()
        self._release = asyncio.Event()
        return self._release

    async def read(self, organization_id: str, since: datetime) -> list[HourCount]:
        release, self._release = self._release, None
        if release is not None:
            self.reading.set()
            await release.wait()
        return await super().read(organization_id, since)


async def test_overlapping_calls_after_an_hour_ends_count_each_call_once() -> None:
    store = _HeldStore()
    hours = HourlyCounts(store.read, settle=SETTLE)
    for offset in (0, 1):
        store.add(NOW - offset * HOUR)
    await hours.last_day(ORGANIZATION, NOW)
    next_hour = hour_of(NOW) + HOUR
    store.add(next_hour + timedelta(seconds=30))
    later = next_hour + SETTLE + timedelta(minutes=1)  # the hour of NOW has just settled
    release = store.hold_next_read()
    first = asyncio.create_task(hours.last_day(ORGANIZATION, later))
    await store.reading.wait()
    second = await hours.last_day(ORGANIZATION, later)  # the whole page while the first one reads
    release.set()
    expected = {hour_of(NOW - HOUR): 1, hour_of(NOW): 1, next_hour: 1}
    assert _totals(second.counts) == expected
    assert _totals((await first).counts) == expected
    after = await hours.last_day(ORGANIZATION, later + timedelta(minutes=1))
    assert store.reads[-1] == next_hour and _totals(after.counts) == expected


async def test_an_organization_let_go_during_its_read_is_answered_all_the_same() -> None:
    store = _HeldStore()
    hours = HourlyCounts(store.read, settle=SETTLE)
    store.add(NOW - HOUR)
    await hours.last_day(ORGANIZATION, NOW)
    release = store.hold_next_read()
    reading = asyncio.create_task(hours.last_day(ORGANIZATION, NOW + timedelta(minutes=1)))
    await store.reading.wait()
    for _ in range(MAX_ORGANIZATIONS):  # enough others to push it out of the kept ones
        await hours.last_day(str(uuid.uuid4()), NOW)
    release.set()
    assert _totals((await reading).counts) == {hour_of(NOW - HOUR): 1}
    again = await hours.last_day(ORGANIZATION, NOW + timedelta(minutes=2))
    assert store.reads[-1] == hour_of(NOW + timedelta(minutes=2)) - (DAY_HOURS - 1) * HOUR  # read whole
    assert _totals(again.counts) == {hour_of(NOW - HOUR): 1}
