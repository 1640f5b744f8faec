"""Egress capacity against real loopback upstreams that hold requests open: a saturated origin or
organization answers within the caller's deadline, or at once when too many calls already wait,
and never holds up another origin or organization."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import yarl
from pydantic import ValidationError

from keyhole.egress import EgressClient, EgressLimits, EgressPolicy, read_capped
from keyhole.errors import EgressSaturated, KeyholeError, RateLimited, UpstreamTimeout
from keyhole.settings import Settings

from .conftest import LOOPBACK_V4

HANG_GUARD = 30  # seconds: only a hang ever gets near it


@dataclass
class HeldUpstream:
    """Answers ``/hold`` only once ``release`` is set, anything else at once; counts requests."""

    port: int = 0
    held: int = 0
    seen: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str = "/") -> yarl.URL:
        return yarl.URL(f"http://127.0.0.1:{self.port}{path}")

    async def holding(self, count: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: self.held >= count)


@pytest.fixture
async def hold() -> AsyncIterator[Callable[[], Awaitable[HeldUpstream]]]:
    servers: list[tuple[asyncio.Server, HeldUpstream]] = []

    async def start() -> HeldUpstream:
        state = HeldUpstream()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while head := await reader.readuntil(b"\r\n\r\n"):
                    state.seen += 1
                    if head.startswith(b"GET /hold "):
                        async with state.arrived:
                            state.held += 1
                            state.arrived.notify_all()
                        await state.release.wait()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        state.port = server.sockets[0].getsockname()[1]
        servers.append((server, state))
        return state

    yield start
    for server, state in servers:
        state.release.set()
        server.close()


@asynccontextmanager
async def egress(
    in_flight: int = 100, per_origin: int = 100, per_organization: int = 100
) -> AsyncIterator[EgressClient]:
    client = EgressClient(
        EgressPolicy([LOOPBACK_V4]), limits=EgressLimits(in_flight, per_origin, per_organization)
    )
    try:
        async with asyncio.timeout(HANG_GUARD):
            yield client
    finally:
        await client.close()


async def get(
    client: EgressClient,
    url: yarl.URL,
    *,
    timeout_ms: int = HANG_GUARD * 1000,
    organization: str | None = None,
) -> tuple[int, bytes]:
    async with client.request(
        "GET", url, headers=None, data=None, timeout_ms=timeout_ms, organization=organization
    ) as response:
        body, _ = await read_capped(response, 1024)
        return response.status, body


async def refused(call: Awaitable[object]) -> KeyholeError:
    try:
        await call
    except KeyholeError as error:
        return error
    raise AssertionError("the call was not refused")


async def settle() -> None:
    """Let every started call run up to where it waits (no I/O before a call queues for a slot)."""
    for _ in range(5):
        await asyncio.sleep(0)


class Calls:
    """Calls started in the background, all awaited (and the upstream released) on exit."""

    def __init__(self, upstream: HeldUpstream) -> None:
        self._upstream = upstream
        self.tasks: list[asyncio.Task[tuple[int, bytes]]] = []

    def start(self, call: Awaitable[tuple[int, bytes]]) -> asyncio.Task[tuple[int, bytes]]:
        task: asyncio.Task[tuple[int, bytes]] = asyncio.ensure_future(call)
        self.tasks.append(task)
        return task

    async def finish(self) -> list[tuple[int, bytes]]:
        self._upstream.release.set()
        return list(await asyncio.gather(*self.tasks))


async def test_a_full_origin_times_out_within_the_deadline_and_other_origins_go_at_once(
    hold: Callable[[], Awaitable[HeldUpstream]],
) -> None:
    slow, other = await hold(), await hold()
    async with egress(per_origin=2) as client:
        calls = Calls(slow)
        for _ in range(2):
            calls.start(get(client, slow.url("/hold")))
        await slow.holding(2)

        error = await refused(get(client, slow.url(), timeout_ms=300))
        assert isinstance(error, UpstreamTimeout)
        assert (error.status, error.key) == (504, "upstream_timeout")
        assert error.message.startswith("timed out after 300 ms waiting for a free upstream slot")
        assert f"http://127.0.0.1:{slow.port} already had 2 calls in flight" in error.message
        assert "the request was not sent" in error.message
        assert error.metadata == {"scope": "origin", "limit": 2}

        assert await get(client, other.url()) == (200, b"ok")
        assert await calls.finish() == [(200, b"ok")] * 2
        assert slow.seen == 2  # the call that timed out was never sent
        assert await get(client, slow.url()) == (200, b"ok")  # the slots came back


async def test_a_stream_waits_for_a_slot_no_longer_than_its_timeout(
    hold: Callable[[], Awaitable[HeldUpstream]],
) -> None:
    slow = await hold()
    async with egress(per_origin=1) as client:
        calls = Calls(slow)
        calls.start(get(client, slow.url("/hold")))
        await slow.holding(1)
        stream = client.stream("GET", slow.url(), headers=None, timeout_ms=200, deadline_ms=60_000)
        error = await refused(stream.__aenter__())
        assert isinstance(error, UpstreamTimeout)
        assert error.message.startswith("timed out after 200 ms waiting for a free upstream slot")
        assert await calls.finish() == [(200, b"ok")]


async def test_a_full_origin_queue_is_refused_at_once_with_retry_after(
    hold: Callable[[], Awaitable[HeldUpstream]],
) -> None:
    slow = await hold()
    async with egress(per_origin=2) as client:
        calls = Calls(slow)
        for _ in range(2):
            calls.start(get(client, slow.url("/hold")))
        await slow.holding(2)
        for _ in range(2):  # they wait, within their (long) deadline
            calls.start(get(client, slow.url()))
        await settle()

        error = await refused(get(client, slow.url()))  # refused although its deadline is far away
        assert isinstance(error, EgressSaturated)
        assert (error.status, error.key, error.retry_after) == (503, "origin_saturated", 1)
        assert error.metadata == {"scope": "origin", "limit": 2}
        assert (
            f"http://127.0.0.1:{slow.port} already has 2 calls in flight and 2 more waiting" in error.message
        )

        assert await calls.finish() == [(200, b"ok")] * 4  # the waiting calls got the freed slots
        assert slow.seen == 4  # the refused call was never sent


async def test_an_organization_at_its_limit_does_not_hold_up_another(
    hold: Callable[[], Awaitable[HeldUpstream]],
) -> None:
    slow, other = await hold(), await hold()
    async with egress(per_organization=2) as client:
        calls = Calls(slow)
        for _ in range(2):
            calls.start(get(client, slow.url("/hold"), organization="org-a"))
        await slow.holding(2)

        # org-a is at its limit, whichever origin it calls...
        error = await refused(get(client, other.url(), timeout_ms=300, organization="org-a"))
        assert isinstance(error, UpstreamTimeout)
        assert (error.status, error.key) == (504, "upstream_timeout")
        assert "(this organization already had 2 calls in flight, its limit)" in error.message
        assert error.metadata == {"scope": "organization", "limit": 2}
        # ...while org-b, and calls of no organization, reach the same origins at once.
        assert await get(client, slow.url(), organization="org-b") == (200, b"ok")
        assert await get(client, other.url(), organization="org-b") == (200, b"ok")
        assert await get(client, other.url()) == (200, b"ok")

        for _ in range(2):
            calls.start(get(client, other.url(), organization="org-a"))
        await settle()
        error = await refused(get(client, other.url(), organization="org-a"))
        assert isinstance(error, RateLimited)
        assert (error.status, error.key, error.retry_after) == (429, "organization_concurrency_limited", 1)
        assert error.metadata == {"scope": "organization", "limit": 2}
        assert await get(client, other.url(), organization="org-b") == (200, b"ok")

        assert await calls.finish() == [(200, b"ok")] * 4


async def test_the_global_limit_and_its_queue(hold: Callable[[], Awaitable[HeldUpstream]]) -> None:
    slow, other = await hold(), await hold()
    async with egress(in_flight=2) as client:
        calls = Calls(slow)
        for _ in range(2):
            calls.start(get(client, slow.url("/hold")))
        await slow.holding(2)
        error = await refused(get(client, other.url(), timeout_ms=300))
        assert isinstance(error, UpstreamTimeout)
        assert error.metadata == {"scope": "global", "limit": 2}

        for _ in range(2):
            calls.start(get(client, other.url()))
        await settle()
        error = await refused(get(client, other.url()))
        assert isinstance(error, EgressSaturated)
        assert (error.status, error.key, error.retry_after) == (503, "egress_saturated", 1)
        assert await calls.finish() == [(200, b"ok")] * 4


async def test_a_cancelled_wait_leaves_the_queue(hold: Callable[[], Awaitable[HeldUpstream]]) -> None:
    slow = await hold()
    async with egress(per_origin=1) as client:
        calls = Calls(slow)
        calls.start(get(client, slow.url("/hold")))
        await slow.holding(1)
        gone = asyncio.ensure_future(get(client, slow.url()))
        await settle()
        assert isinstance(await refused(get(client, slow.url())), EgressSaturated)  # the queue is full
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        calls.start(get(client, slow.url()))  # its place is free again
        await settle()
        assert isinstance(await refused(get(client, slow.url())), EgressSaturated)
        assert await calls.finish() == [(200, b"ok")] * 2
        assert await get(client, slow.url()) == (200, b"ok")


@pytest.mark.parametrize(
    "name",
    ["EGRESS_MAX_IN_FLIGHT", "EGRESS_MAX_IN_FLIGHT_PER_ORIGIN", "EGRESS_MAX_IN_FLIGHT_PER_ORGANIZATION"],
)
@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5", "100001"])
def test_bad_limits_are_refused_with_the_setting_named(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"KEYHOLE_{name}", value)
    with pytest.raises(ValidationError, match=f"KEYHOLE_{name} must be a whole number from 1 to 100,000"):
        Settings()


def test_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYHOLE_EGRESS_MAX_IN_FLIGHT", "1000")
    monkeypatch.setenv("KEYHOLE_EGRESS_MAX_IN_FLIGHT_PER_ORIGIN", "10")
    monkeypatch.setenv("KEYHOLE_EGRESS_MAX_IN_FLIGHT_PER_ORGANIZATION", "20")
    settings = Settings()
    assert (
        settings.egress_max_in_flight,
        settings.egress_max_in_flight_per_origin,
        settings.egress_max_in_flight_per_organization,
    ) == (1000, 10, 20)
