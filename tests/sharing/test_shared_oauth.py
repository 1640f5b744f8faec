"""A shared copy of an OAuth2 connection uses its parent's token: one token store, one refresh
lock and one token fetch for the credential, whichever organization calls."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from conftest import PYTHON, KeyholeServer, free_port, stop_process, wait_for
from oauth.conftest import HERE as OAUTH_TESTS
from oauth.conftest import AuthServer

from .support import PartnerAccount, create_connection, proxied, share


@pytest.fixture
def authserver() -> Iterator[AuthServer]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, str(OAUTH_TESTS / "authserver.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/admin/stats", process)
    yield AuthServer(url)
    stop_process(process)


def test_a_copy_calls_with_its_parents_token(
    sharing_server: KeyholeServer, http: httpx.Client, account: PartnerAccount, authserver: AuthServer
) -> None:
    configuration = {"url": authserver.url, "auth": authserver.auth("client_credentials")}
    parent = create_connection(http, account.owner.bearer, "api", configuration)
    copy = share(http, account, parent, account.child_a)
    assert proxied(http, parent, account.owner.bearer, method="GET", path="/api/me")["status"] == 200
    assert authserver.count("token:client_credentials") == 1
    for _ in range(3):
        assert proxied(http, copy, account.child_a.bearer, method="GET", path="/api/me")["status"] == 200
    assert authserver.count("token:client_credentials") == 1  # the parent's token, not one of its own
    assert authserver.count("resource") == 4
    with sqlite3.connect(sharing_server.home / "keyhole.db") as db:
        stored = db.execute("SELECT id FROM oauth_tokens WHERE id IN (?, ?)", (parent, copy)).fetchall()
    assert stored == [(parent,)]
