"""Fixtures of the shared-connection suite: one server whose cached targets never expire during a
test (so a change to a parent reaches its copies by eviction, not by the cache TTL), with a SQL
file root; partner accounts on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import KeyholeServer, server_env

from .support import PartnerAccount, partner_account


@pytest.fixture(scope="session")
def sql_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared-sql-files")


@pytest.fixture(scope="session")
def sharing_server(tmp_path_factory: pytest.TempPathFactory, sql_files: Path) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("keyhole-sharing")
    env = server_env(home, KEYHOLE_CACHE_TTL_SECONDS="3600", KEYHOLE_SQL_FILE_ROOT=str(sql_files))
    instance = KeyholeServer(home, env).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def http(sharing_server: KeyholeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sharing_server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def account(sharing_server: KeyholeServer, http: httpx.Client) -> PartnerAccount:
    return partner_account(sharing_server, http)


@pytest.fixture(scope="module")
def foreign(sharing_server: KeyholeServer, http: httpx.Client) -> PartnerAccount:
    """Another partner account: it must learn nothing of the first one's connections."""
    return partner_account(sharing_server, http)
