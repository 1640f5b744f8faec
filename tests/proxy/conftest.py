"""Fixtures of the connection-proxy suite (helpers live in ``support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .support import Gateway, LocalUpstream, gateway


@pytest.fixture(scope="session")
def gw_a(server: Any, org_a: Any) -> Iterator[Gateway]:
    gw = gateway(server.url, org_a.bearer)
    yield gw
    gw.client.close()


@pytest.fixture(scope="session")
def gw_b(server: Any, org_b: Any) -> Iterator[Gateway]:
    gw = gateway(server.url, org_b.bearer)
    yield gw
    gw.client.close()


@pytest.fixture
def make_gateway() -> Iterator[Callable[[str, dict[str, str]], Gateway]]:
    made: list[Gateway] = []

    def factory(base_url: str, headers: dict[str, str]) -> Gateway:
        gw = gateway(base_url, headers)
        made.append(gw)
        return gw

    yield factory
    for gw in made:
        gw.client.close()


@pytest.fixture(scope="session")
def upstream() -> Iterator[LocalUpstream]:
    instance = LocalUpstream().start()
    yield instance
    instance.stop()


@pytest.fixture
def fresh_upstream() -> Iterator[LocalUpstream]:
    """An upstream of the test's own, for counts no other test can disturb."""
    instance = LocalUpstream().start()
    yield instance
    instance.stop()
