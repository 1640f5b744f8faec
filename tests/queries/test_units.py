"""The execution core without servers: value mapping, names, tokens, page cutting, scrubbing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import decimal
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from keyhole.errors import InvalidRequest
from keyhole.queries.execution import Column, Control, QueryFailed, QueryLimits, run_statement
from keyhole.queries.page_tokens import PageTokens
from keyhole.queries.pages import PageBuilder, PageLimits
from keyhole.queries.values import encode_rows, iso_duration, unique_names
from keyhole.vault import KeyRing
from keyhole.vault.keyring import generate_key
from keyhole.vault.scrub import Scrubber, scrub_message


class MemorySink:
    def __init__(self) -> None:
        self.pages: dict[int, bytes] = {}
        self.discarded: int | None = None

    async def write(self, number: int, elements: Sequence[bytes]) -> None:
        self.pages[number] = b"[" + b",".join(elements) + b"]"

    async def discard(self, pages: int) -> None:
        self.discarded = pages
        for number in range(pages):
            self.pages.pop(number, None)


def test_duplicate_names_get_suffixes_in_order() -> None:
    assert unique_names(["id", "name", "id", "id"]) == ["id", "name", "id_2", "id_3"]
    # a suffix never collides with a real column
    assert unique_names(["id", "id_2", "id"]) == ["id", "id_2", "id_3"]
    assert unique_names(["", "a"]) == ["column_1", "a"]


def test_iso_durations() -> None:
    assert (
        iso_duration(dt.timedelta(days=3, hours=4, minutes=5, seconds=6, microseconds=500_000))
        == "P3DT4H5M6.5S"
    )
    assert iso_duration(dt.timedelta(0)) == "PT0S"
    assert iso_duration(-dt.timedelta(hours=1)) == "-PT1H"


def test_encoding_of_python_values() -> None:
    names = ["d", "b", "u", "t", "td", "big", "f", "nested", "tz"]
    row = (
        decimal.Decimal("12.50"),
        b"\x00\xff",
        uuid.UUID(int=1),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        dt.timedelta(hours=2),
        2**70,
        1.5,
        [decimal.Decimal("1E+3"), {"k": b"x"}],
        dt.time(1, 2, 3, tzinfo=dt.UTC),
    )
    [decoded] = orjson.loads(encode_rows(names, [row]))
    assert decoded == {
        "d": "12.50",
        "b": base64.b64encode(b"\x00\xff").decode(),
        "u": "00000000-0000-0000-0000-000000000001",
        "t": "2024-01-02T03:04:05Z",
        "td": "PT2H",
        "big": str(2**70),
        "f": 1.5,
        "nested": ["1000", {"k": "eA=="}],
        "tz": "01:02:03+00:00",
    }


def test_page_tokens_are_bound_to_the_query_and_tamper_proof() -> None:
    first = generate_key("k1")
    tokens = PageTokens(KeyRing([first]))
    query = str(uuid.uuid4())
    token = tokens.sign(query, 7)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert tokens.verify(query, token) == 7
    # percent-encoded once more on the way (as the SDK may do)
    assert tokens.verify(query, "".join(f"%{ord(c):02X}" for c in token)) == 7
    payload, mac = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[4] ^= 1  # page 7 → 6, MAC kept
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=") + "." + mac
    for bad in (
        forged,
        "garbage",
        token + "x",
        "",
        tokens.sign(str(uuid.uuid4()), 7),
        "a" * 10 + "." + "b" * 22,
    ):
        with pytest.raises(InvalidRequest) as caught:
            tokens.verify(query, bad)
        assert caught.value.status == 400
    # a rotation keeps old tokens valid while the old key is configured
    rotated = PageTokens(KeyRing([generate_key("k2"), first]))
    assert rotated.verify(query, token) == 7
    assert rotated.verify(query, rotated.sign(query, 3)) == 3


def _build(limits: PageLimits, rows: list[tuple[Any, ...]], batch: int = 7) -> tuple[MemorySink, Any]:
    sink = MemorySink()

    async def go() -> Any:
        builder = PageBuilder(sink, ["n", "s"], limits)
        for start in range(0, len(rows), batch):
            if not await builder.add(rows[start : start + batch]):
                break
        return await builder.finish()

    return sink, asyncio.run(go())


def test_pages_cut_by_rows_and_bytes_in_order() -> None:
    rows = [(i, "x" * (i % 13)) for i in range(1000)]
    sink, summary = _build(PageLimits(page_rows=50, page_bytes=600, max_rows=10**6, max_bytes=10**9), rows)
    assert summary.count == 1000 and not summary.truncated
    decoded = [row for number in range(summary.pages) for row in orjson.loads(sink.pages[number])]
    assert decoded == [{"n": n, "s": s} for n, s in rows]
    for number in range(summary.pages):
        page = sink.pages[number]
        assert len(orjson.loads(page)) <= 50
        assert len(page) <= 600
    # a single row larger than a page gets a page of its own
    sink, summary = _build(
        PageLimits(page_rows=50, page_bytes=1024, max_rows=10**6, max_bytes=10**9),
        [(1, "y" * 5000), (2, "z")],
    )
    assert summary.pages == 2 and orjson.loads(sink.pages[1]) == [{"n": 2, "s": "z"}]


def test_result_limits_truncate() -> None:
    rows = [(i, "abc") for i in range(100)]
    _, summary = _build(PageLimits(page_rows=10, page_bytes=10**6, max_rows=10**6, max_bytes=200), rows)
    assert summary.truncated and 0 < summary.count < 100 and summary.bytes <= 200


def test_scrub_removes_password_and_dsn_credentials() -> None:
    message = "failed for postgresql://bob:p%40ss%20w0rd@db/x and p@ss w0rd and mysql://u:v@h and p%40ss+w0rd"
    cleaned = scrub_message(message, Scrubber.of(["p@ss w0rd"]))
    assert "p@ss" not in cleaned and "p%40ss" not in cleaned and "u:v@" not in cleaned
    assert "[REDACTED]" in cleaned


def test_limits_from_configuration_defaults() -> None:
    assert QueryLimits.from_configuration({}) == QueryLimits(300_000, 1_000_000, 268_435_456, True)
    limits = QueryLimits.from_configuration({"query": {"max_rows": 5, "read_only": False}})
    assert (limits.max_rows, limits.read_only) == (5, False)


class FakeStatement:
    def __init__(self, total: int, delay: float = 0.0) -> None:
        self.columns = [Column("n", "int")]
        self._next = 0
        self._total = total
        self._delay = delay
        self.fetched = 0

    async def fetch(self, size: int) -> list[tuple[int]]:
        if self._delay:
            await asyncio.sleep(self._delay)
        rows = [(n,) for n in range(self._next, min(self._total, self._next + size))]
        self._next += len(rows)
        self.fetched += len(rows)
        return rows


class FakeSession:
    timeout_grace = 0.0

    def __init__(self, statement: FakeStatement) -> None:
        self.statement = statement
        self.cancelled = False
        self.succeeded = False

    async def execute(self, sql: str) -> FakeStatement:
        if sql == "boom":
            raise RuntimeError("syntax error near password hunter2")
        return self.statement

    async def cancel(self) -> None:
        self.cancelled = True

    def succeed(self) -> None:
        self.succeeded = True

    def abandon(self) -> None:
        return None


def _run(statement: FakeStatement, sql: str = "SELECT", **limits: Any) -> tuple[Any, FakeSession, MemorySink]:
    session = FakeSession(statement)
    sink = MemorySink()

    @contextlib.asynccontextmanager
    async def opener() -> Any:
        yield session

    async def go() -> Any:
        return await run_statement(
            opener,
            sql,
            sink,
            limits=QueryLimits(**limits),
            page_rows=100,
            page_bytes=10**6,
            control=Control(),
            describe_error=lambda error: scrub_message(str(error), Scrubber.of(["hunter2"])),
        )

    return asyncio.run(go()), session, sink


class LateSession(FakeSession):
    """A statement that reaches the database only after the first cancel was sent (a SQLite
    statement still on its way to its thread): that cancel is lost, only a later one stops it."""

    def __init__(self) -> None:
        super().__init__(FakeStatement(0))
        self.cancels = 0

    async def execute(self, sql: str) -> FakeStatement:
        while self.cancels == 0:
            await asyncio.sleep(0.005)
        running_since = self.cancels
        while self.cancels == running_since:
            await asyncio.sleep(0.005)
        raise RuntimeError("interrupted")

    async def cancel(self) -> None:
        self.cancels += 1


def test_a_cancel_that_arrives_before_the_statement_is_sent_again() -> None:
    session = LateSession()
    control = Control()

    @contextlib.asynccontextmanager
    async def opener() -> Any:
        yield session

    async def go() -> None:
        asyncio.get_running_loop().call_later(0.02, control.cancel, "cancelled")
        await asyncio.wait_for(
            run_statement(
                opener,
                "SELECT",
                MemorySink(),
                limits=QueryLimits(),
                page_rows=100,
                page_bytes=10**6,
                control=control,
                describe_error=str,
                cancel_poll_seconds=0.02,
            ),
            timeout=10,
        )

    with pytest.raises(QueryFailed) as caught:
        asyncio.run(go())
    assert caught.value.key == "cancelled"
    assert session.cancels >= 2


def test_run_statement_counts_truncates_and_fetches_little_past_the_limit() -> None:
    summary, session, sink = _run(FakeStatement(250))
    assert (summary.count, summary.pages, summary.truncated, session.succeeded) == (250, 3, False, True)
    assert [row["n"] for page in range(3) for row in orjson.loads(sink.pages[page])] == list(range(250))
    exact, _, _ = _run(FakeStatement(100), max_rows=100)
    assert (exact.count, exact.truncated) == (100, False)
    statement = FakeStatement(10**6)
    cut, _, _ = _run(statement, max_rows=150)
    assert (cut.count, cut.truncated) == (150, True)
    assert statement.fetched <= 151 + 100  # never streams the whole result past the limit


def test_run_statement_failures_are_scrubbed_and_pages_discarded() -> None:
    with pytest.raises(QueryFailed) as caught:
        _run(FakeStatement(10), sql="boom")
    assert "hunter2" not in caught.value.message and "[REDACTED]" in caught.value.message
    with pytest.raises(QueryFailed) as timed_out:
        _run(FakeStatement(10**9, delay=0.01), statement_timeout_ms=300)
    assert timed_out.value.key == "statement_timeout"
