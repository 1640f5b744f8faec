"""A partner account with two children and a rival partner, on the shared server and on a server
whose principal cache outlives every test (so that 'at once' cannot be the cache expiring)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import KeyholeServer, server_env

from .support import World, make_world


@pytest.fixture(scope="session")
def cached_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("keyhole-tenancy")
    instance = KeyholeServer(home, server_env(home, KEYHOLE_CACHE_TTL_SECONDS="3600")).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def world(cached_server: KeyholeServer) -> World:
    return make_world(cached_server)


@pytest.fixture
def client(cached_server: KeyholeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cached_server.url, timeout=30) as instance:
        yield instance
