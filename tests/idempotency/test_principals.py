"""An Idempotency-Key belongs to the principal that sent it: two users of one organization and the
organization key may send the same key and each gets its own outcome, never another's."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alembic import command
from polytomic import Polytomic
from polytomic.errors import NotFoundError

from composio.conftest import Composio
from conftest import KeyholeServer, Keys, server_env
from jobs.support import AsyncApi, Upstream, api
from keyhole.idempotency import fingerprint
from keyhole.store.migrate import alembic_config
from keyhole.vault import KeyRing, Vault
from keyhole.vault.rotation import row_aad
from queries.support import sdk, wait

from .test_idempotency import KEY, fresh_key, proxy


@dataclass
class Colleagues:
    first: Keys  # a user; `first.basic` is the organization key
    second: Keys  # another user of the same organization

    def principals(self) -> dict[str, dict[str, str]]:
        return {"first": self.first.bearer, "second": self.second.bearer, "organization": self.first.basic}


@pytest.fixture(scope="module")
def colleagues(server: KeyholeServer) -> Colleagues:
    organization = f"idem-principals-{uuid.uuid4().hex[:8]}"
    first = server.bootstrap(organization, "first@principals.test")
    second = server.bootstrap(organization, "second@principals.test")
    assert first.organization_id == second.organization_id and first.user_id != second.user_id
    return Colleagues(first, second)


@pytest.fixture(scope="module")
def clients(server: KeyholeServer, colleagues: Colleagues) -> Iterator[dict[str, AsyncApi]]:
    made = {name: api(server.url, headers) for name, headers in colleagues.principals().items()}
    yield made
    for client in made.values():
        client.client.close()


def test_each_principal_gets_its_own_proxy_outcome(
    clients: dict[str, AsyncApi], counting_upstream: Upstream
) -> None:
    connection = clients["first"].connection(counting_upstream.url)
    path, key = f"/count/{uuid.uuid4().hex}", fresh_key()
    firsts = {name: proxy(client, connection, path, key) for name, client in clients.items()}
    for name, response in firsts.items():
        assert response.status_code == 200, (name, response.text)
        assert "idempotent-replayed" not in response.headers, name
    call_ids = {response.json()["data"]["proxyCallId"] for response in firsts.values()}
    assert len(call_ids) == 3
    assert counting_upstream.hits(path) == 3

    for name, client in clients.items():
        again = proxy(client, connection, path, key)
        assert again.headers["idempotent-replayed"] == "true", name
        assert again.json() == firsts[name].json(), name
    assert counting_upstream.hits(path) == 3


def test_async_submissions_are_per_principal(
    clients: dict[str, AsyncApi], counting_upstream: Upstream
) -> None:
    connection = clients["first"].connection(counting_upstream.url)
    path, key = f"/count/{uuid.uuid4().hex}", fresh_key()
    jobs = {
        name: proxy(client, connection, path, key, **{"async": True}).json()["data"]["jobId"]
        for name, client in clients.items()
    }
    assert len(set(jobs.values())) == 3
    for name, client in clients.items():
        assert client.wait(jobs[name])["status"] == "done"
        replayed = proxy(client, connection, path, key, **{"async": True})
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json()["data"]["jobId"] == jobs[name]
    assert counting_upstream.hits(path) == 3


def test_a_reused_key_is_422_only_for_its_own_principal(
    clients: dict[str, AsyncApi], counting_upstream: Upstream
) -> None:
    connection = clients["first"].connection(counting_upstream.url)
    key = fresh_key()
    assert proxy(clients["first"], connection, "/count/one", key).status_code == 200
    reused = proxy(clients["first"], connection, "/count/other", key)
    assert reused.status_code == 422, reused.text
    assert reused.json()["key"] == "idempotency_key_reused"
    for name in ("second", "organization"):
        fresh = proxy(clients[name], connection, "/count/other", key)
        assert fresh.status_code == 200, (name, fresh.text)
        assert "idempotent-replayed" not in fresh.headers


def test_a_key_in_progress_is_409_only_for_its_own_principal(
    clients: dict[str, AsyncApi], counting_upstream: Upstream
) -> None:
    connection = clients["first"].connection(counting_upstream.url)
    key, marker = fresh_key(), f"seconds=3&n={uuid.uuid4().hex}"
    body = {"request": {"method": "GET", "path": "/delay", "rawQuery": marker}}
    url = f"/api/connections/{connection}/proxy"
    results: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(clients["first"].client.post(url, json=body, headers={KEY: key}))
    )
    slow.start()
    deadline = time.monotonic() + 30
    while counting_upstream.hits(f"/delay?{marker}") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    clash = clients["first"].client.post(url, json=body, headers={KEY: key})
    others = {
        name: clients[name].client.post(url, json=body, headers={KEY: key})
        for name in ("second", "organization")
    }
    slow.join(60)
    assert clash.status_code == 409, clash.text
    for name, response in others.items():
        assert response.status_code == 200, (name, response.text)
        assert "idempotent-replayed" not in response.headers
    [original] = results
    assert original.status_code == 200
    assert counting_upstream.hits(f"/delay?{marker}") == 3


# -- the query runner: a query id is readable by its submitter only ------------------------------


@pytest.fixture(scope="module")
def sqlite_connection(server: KeyholeServer, colleagues: Colleagues) -> str:
    name = f"principals-{uuid.uuid4().hex[:8]}.sqlite"
    with sqlite3.connect(server.home / "sql" / name) as database:  # the default KEYHOLE_SQL_FILE_ROOT
        database.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        database.executemany("INSERT INTO items VALUES (?, ?)", [(1, "one"), (2, "two")])
    created = sdk(server, colleagues.first.user_api_key).connections.create(
        name="principals", type="sqlite", configuration={"path": name}
    )
    return str(created.data.id)


def test_each_principal_gets_its_own_query(
    server: KeyholeServer, colleagues: Colleagues, sqlite_connection: str
) -> None:
    sdks: dict[str, Polytomic] = {
        "first": sdk(server, colleagues.first.user_api_key),
        "second": sdk(server, colleagues.second.user_api_key),
        "organization": sdk(server, headers=colleagues.first.basic),
    }
    key, sql = fresh_key(), "SELECT name FROM items ORDER BY id"
    ids = {
        name: client.query_runner.run_query(
            connection_id=sqlite_connection, query=sql, idempotency_key=key
        ).data.id
        for name, client in sdks.items()
    }
    assert len(set(ids.values())) == 3
    for name, client in sdks.items():
        query_id = ids[name]
        assert query_id is not None
        result = wait(client, query_id)
        assert result.data.status == "done", (name, result.data.error)
        assert result.data.results == [{"name": "one"}, {"name": "two"}]
        for other, other_client in sdks.items():
            if other != name:
                with pytest.raises(NotFoundError):
                    other_client.query_runner.get_query(id=query_id)
        replayed = client.query_runner.with_raw_response.run_query(
            connection_id=sqlite_connection, query=sql, idempotency_key=key
        )
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.data.data.id == query_id


# -- the Composio dialect ------------------------------------------------------------------------


def test_composio_never_answers_with_another_principals_outcome(
    server: KeyholeServer, colleagues: Colleagues, counting_upstream: Upstream
) -> None:
    """The Composio routes keep no Idempotency-Key records: every principal's call runs."""
    keys = {"first": colleagues.first.user_api_key, "second": colleagues.second.user_api_key}
    key, path = fresh_key(), f"/count/{uuid.uuid4().hex}"
    with (
        httpx.Client(base_url=server.url, headers={"x-api-key": keys["first"]}, timeout=30) as first,
        httpx.Client(base_url=server.url, headers={"x-api-key": keys["second"]}, timeout=30) as second,
    ):
        account = Composio(first).account(counting_upstream.url, user_id=f"user-{uuid.uuid4().hex[:8]}")
        body = {"endpoint": path, "method": "GET", "connected_account_id": account}
        for client in (first, second, first):
            response = Composio(client).proxy(body, headers={KEY: key})
            assert response.status_code == 200, response.text
            assert "idempotent-replayed" not in response.headers
    assert counting_upstream.hits(path) == 3


# -- records kept from before keys were scoped to a principal ------------------------------------


def _sqlite_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_records_from_before_the_upgrade_answer_nobody(tmp_path: Path, counting_upstream: Upstream) -> None:
    server = KeyholeServer(tmp_path, server_env(tmp_path)).start()
    keys = server.bootstrap("before-upgrade", "first@before.test")
    connection = api(server.url, keys.bearer).connection(counting_upstream.url)
    server.stop()

    # The store as the previous version left it: one organization-wide record, made by somebody
    # for exactly the request sent below, with an answer nobody else may see.
    database = tmp_path / "keyhole.db"
    command.downgrade(alembic_config(f"sqlite+aiosqlite:///{database}"), "0006-1")
    path, key = f"/count/{uuid.uuid4().hex}", fresh_key()
    url = f"/api/connections/{connection}/proxy"
    body = json.dumps({"request": {"method": "GET", "path": path}}).encode()
    record_id, now = str(uuid.uuid4()), datetime.now(UTC)
    stored = Vault(KeyRing.load(None, tmp_path / "master.keys")).encrypt(
        b'{"data":{"theirs":true}}', row_aad("idempotency_keys", record_id, "response_body")
    )
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO idempotency_keys (id, organization_id, key, fingerprint, state, status,"
            " response_headers, response_body, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, 'completed', 200, ?, ?, ?, ?)",
            (
                record_id,
                keys.organization_id,
                key,
                fingerprint("POST", url, "", body),
                json.dumps([["content-type", "application/json"]]),
                stored,
                _sqlite_time(now),
                _sqlite_time(now + timedelta(days=1)),
            ),
        )

    server.start()
    try:
        for headers in (keys.bearer, keys.basic):
            response = httpx.post(
                server.url + url,
                content=body,
                headers={**headers, KEY: key, "content-type": "application/json"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert "idempotent-replayed" not in response.headers
            assert "theirs" not in response.text
        assert counting_upstream.hits(path) == 2
    finally:
        server.stop()
    with sqlite3.connect(database) as db:
        assert not db.execute("SELECT 1 FROM idempotency_keys WHERE id = ?", (record_id,)).fetchall()
