"""Fixtures of the console suite: a live server with a SQL file root, two organizations, and
their users' and organizations' keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from browser import launched
from conftest import KeyholeServer, Keys, server_env


@dataclass
class ConsoleServer:
    server: KeyholeServer
    sql_root: Path
    acme: Keys
    rival: Keys

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    home = tmp_path_factory.mktemp("keyhole-console")
    sql_root = home / "sql"
    sql_root.mkdir()
    server = KeyholeServer(
        home, server_env(home, KEYHOLE_SQL_FILE_ROOT=str(sql_root), KEYHOLE_QUERY_PAGE_ROWS="25")
    ).start()
    try:
        yield ConsoleServer(
            server,
            sql_root,
            server.bootstrap("console-acme", "ada@acme.test"),
            server.bootstrap("console-rival", "rob@rival.test"),
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per module; each test opens its own contexts. Not for the session:
    Playwright's synchronous API keeps an event loop running in this thread while it is open,
    which the suite's async tests in other modules cannot share."""
    with launched() as instance:
        yield instance
