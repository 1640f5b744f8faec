"""Every path that resolves a host goes through the one address policy, before any connection:
the egress client (proxy calls, health checks, fetches), database hosts (the probe, the database
list and the query pools) and OAuth token endpoints.

``create_connection`` is replaced by a recorder, so a regression records an attempt instead of
sending anything, and host names are answered by a fake resolver, so nothing asks real DNS.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
import yarl
from hypothesis import given, settings
from hypothesis import strategies as st

from keyhole.databases.connectivity import list_databases, probe_sql
from keyhole.egress import CheckingResolver, EgressClient, EgressPolicy
from keyhole.errors import EgressDenied, InvalidRequest, UpstreamUnreachable
from keyhole.oauth.token_endpoint import OAuthClient, TokenEndpoint
from keyhole.queries.dialects.mysql import MySQLPool
from keyhole.queries.dialects.postgresql import PostgresPool
from keyhole.queries.engines import QueryEngines

from .conftest import LOOPBACK_V4
from .spellings import embedded, non_global_v4, spelled

NAME = "target.example"
PORT = 8443

# What an outside review got to connect(), in the spellings it used.
REVIEW_FINDINGS = ["::ffff:0:127.0.0.1", "::ffff:0:a9fe:a9fe", "::1:0:0:1", "0:0:0:0:0:1:7f00:1"]


@contextmanager
def recorded(dns_answer: str | None = None) -> Iterator[list[tuple[object, object]]]:
    """Connection attempts, refused and recorded; ``NAME`` resolves to ``dns_answer``."""
    attempts: list[tuple[object, object]] = []

    async def record(
        loop: asyncio.AbstractEventLoop, factory: object, host: object = None, port: object = None, **_: Any
    ) -> Any:
        attempts.append((host, port))
        raise ConnectionRefusedError("connection attempts are recorded, never made, in this test")

    real_getaddrinfo = CheckingResolver._getaddrinfo

    async def fake_dns(resolver: CheckingResolver, host: str, port: int, family: int) -> Sequence[Any]:
        if host == NAME and dns_answer is not None:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (dns_answer, port, 0, 0))]
        return await real_getaddrinfo(resolver, host, port, family)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncio.BaseEventLoop, "create_connection", record)
        patch.setattr(CheckingResolver, "_getaddrinfo", fake_dns)
        yield attempts


async def _http(client: EgressClient, host: str) -> None:
    async with client.request(
        "GET", yarl.URL(f"http://{host}:{PORT}/"), headers=None, data=None, timeout_ms=5000
    ):
        pass


async def _oauth(client: EgressClient, host: str) -> None:
    oauth = OAuthClient(
        grant="client_credentials",
        token_url=f"https://{host}:{PORT}/token",
        authorization_url=None,
        client_id="id",
        client_secret="secret",
        scopes=(),
    )
    await TokenEndpoint(client).client_credentials(oauth)


def _database(host: str) -> dict[str, Any]:
    return {"hostname": host, "port": PORT, "username": "u", "password": "secret", "database": "d"}


async def _probe(dialect: str, client: EgressClient, host: str) -> None:
    await probe_sql(dialect, _database(host), resolver=client.resolver, file_root=Path("/nonexistent"))


async def _databases(dialect: str, client: EgressClient, host: str) -> None:
    await list_databases(dialect, _database(host), resolver=client.resolver)


async def _query_pool(dialect: str, client: EgressClient, host: str) -> None:
    engines = QueryEngines(client.resolver, Path("/nonexistent"), pool_size=1, connect_timeout=5.0)
    try:
        pool = engines.pool("connection", dialect, _database(host))
        assert isinstance(pool, PostgresPool | MySQLPool)
        await pool.connect_raw()
    finally:
        await engines.close()


Reach = Callable[[EgressClient, str], Awaitable[None]]
# Each path, and whether it takes the host inside a URL (an IPv6 literal is then bracketed).
PATHS: dict[str, tuple[Reach, bool]] = {
    "http": (_http, True),
    "oauth token endpoint": (_oauth, True),
    **{
        f"{dialect} {name}": (partial(reach, dialect), False)
        for dialect in ("postgresql", "mysql")
        for name, reach in (("probe", _probe), ("databases", _databases), ("query pool", _query_pool))
    },
}


def _refused_everywhere(address_text: str, *, literal: bool) -> None:
    """Each path refuses the address, written as a literal host or answered for a name."""

    async def run() -> None:
        client = EgressClient(EgressPolicy([LOOPBACK_V4]))
        try:
            for name, (reach, in_url) in PATHS.items():
                host = NAME
                if literal:
                    host = "[" + address_text.replace("%", "%25") + "]" if in_url else address_text
                # With a zone id, a path may also find the host malformed or unresolvable.
                with pytest.raises((EgressDenied, InvalidRequest, UpstreamUnreachable, OSError)) as caught:
                    await reach(client, host)
                if "%" not in address_text:
                    assert isinstance(caught.value, EgressDenied), (name, address_text, caught.value)
        finally:
            await client.close()

    with recorded(None if literal else address_text) as attempts:
        asyncio.run(run())
    assert attempts == [], (address_text, attempts)


@pytest.mark.parametrize("address", REVIEW_FINDINGS)
@pytest.mark.parametrize("literal", [True, False], ids=["literal", "resolved"])
def test_review_findings_are_refused_on_every_path(address: str, literal: bool) -> None:
    _refused_everywhere(address, literal=literal)


@settings(max_examples=40, deadline=None)
@given(embedded(non_global_v4), st.booleans(), st.data())
def test_embedded_non_global_ipv4_is_refused_on_every_path(
    case: tuple[str, int, int], literal: bool, data: st.DataObject
) -> None:
    _, _, value = case
    text = data.draw(spelled(value), label="spelling") if literal else str(IPv6Address(value))
    _refused_everywhere(text, literal=literal)


def test_the_recorder_sees_an_allowed_address() -> None:
    """The control: an address the policy allows does reach ``create_connection`` on each path."""

    async def run() -> None:
        client = EgressClient(EgressPolicy([LOOPBACK_V4]))
        try:
            for name, (reach, _) in PATHS.items():
                with pytest.raises(Exception):  # noqa: B017 - only the recorded attempt matters
                    await reach(client, "127.0.0.1")
                assert attempts, name
                attempts.clear()
        finally:
            await client.close()

    with recorded() as attempts:
        asyncio.run(run())
