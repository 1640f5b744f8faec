"""The metadata store on PostgreSQL: a fresh database, the CLI, a CRUD cycle and a proxy call."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory

from conftest import PYTHON, KeyholeServer, server_env
from keyhole.store.migrate import alembic_config
from keyhole.vault.keyring import parse_keys

from .helpers import REDACTED, assert_envelope, bootstrap_keys, cli_ok, connection_ids, proxy_call

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "tok-PG-STORE-SECRET-5e0c"


async def fetch(name: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}")
    try:
        records: list[asyncpg.Record] = await connection.fetch(query)
        return records
    finally:
        await connection.close()


async def test_postgres_store(
    database: str, make_server: Callable[..., KeyholeServer], httpbin_url: str
) -> None:
    # `database` is set up first, so it is torn down (dropped) after the servers have stopped.
    instance = make_server(KEYHOLE_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
    assert not (instance.home / "keyhole.db").exists()

    for _ in range(2):
        migrated = cli_ok(instance, "migrate")
        assert "migrations applied" in migrated.stdout
    versions = await fetch(database, "SELECT version_num FROM alembic_version")
    # One row per head: the migration tree has parallel branches off 0001, all applied.
    heads = set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
    assert {row["version_num"] for row in versions} == heads
    tables = {
        row["tablename"]
        for row in await fetch(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"organizations", "users", "api_keys", "connections", "proxy_calls"} <= tables

    keys = bootstrap_keys(instance, "pg-org", "pat@p.test")
    assert bootstrap_keys(instance, "pg-org", "pat@p.test").organization_id == keys.organization_id

    with httpx.Client(base_url=instance.url, timeout=30) as api:
        created = api.post(
            "/api/connections",
            json={
                "name": "on postgres",
                "type": "api",
                "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}},
            },
            headers=keys.bearer,
        )
        assert created.status_code == 200, created.text
        connection_id = created.json()["data"]["id"]
        assert created.json()["data"]["status"] == "healthy"

        fetched = api.get(f"/api/connections/{connection_id}", headers=keys.basic)
        assert fetched.status_code == 200
        assert fetched.json()["data"]["configuration"]["auth"]["token"] == REDACTED
        assert fetched.json()["data"]["created_at"].endswith("Z")

        response = proxy_call(api, connection_id, keys.bearer, "/bearer")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] == 200
        assert json.loads(response.json()["data"]["body"])["authenticated"] is True

        updated = api.put(
            f"/api/connections/{connection_id}",
            json={
                "name": "renamed on postgres",
                "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": REDACTED}},
            },
            headers=keys.bearer,
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["data"]["name"] == "renamed on postgres"
        assert proxy_call(api, connection_id, keys.bearer, "/bearer").json()["data"]["status"] == 200

        # The audit rows reach PostgreSQL through the driver's executemany, timestamps intact.
        calls = api.get(f"/api/connections/{connection_id}/proxy/calls", headers=keys.bearer)
        assert calls.status_code == 200, calls.text
        assert [(call["status"], call["path"]) for call in calls.json()["data"]] == [(200, "/bearer")] * 2
        assert all(call["createdAt"].endswith("Z") for call in calls.json()["data"])
        stats = api.get(f"/api/connections/{connection_id}/proxy/info", headers=keys.bearer).json()["data"][
            "stats"
        ]
        assert (stats["proxyCallsLast24h"], stats["proxy2xxLast24h"]) == (2, 2)

        # Strings PostgreSQL text cannot hold are refused up front, not turned into a 500.
        for body in (
            {"name": "nul\x00name", "type": "api", "configuration": {"url": httpbin_url}},
            {
                "name": "ok",
                "type": "api",
                "configuration": {"url": httpbin_url},
                "healthcheck_interval": "1h\x00",
            },
        ):
            assert_envelope(api.post("/api/connections", json=body, headers=keys.bearer), 400)
        assert connection_ids(api, keys.bearer) == [connection_id]

        # Secrets are ciphertext in the database; API keys are hashes.
        rows = await fetch(database, "SELECT secrets, configuration::text AS configuration FROM connections")
        assert len(rows) == 1
        assert rows[0]["secrets"].startswith("kh1.")
        assert SECRET not in rows[0]["secrets"] and SECRET not in rows[0]["configuration"]
        key_rows = await fetch(database, "SELECT prefix, key_hash FROM api_keys")
        assert len(key_rows) == 4
        stored = " ".join(f"{row['prefix']} {row['key_hash']}" for row in key_rows)
        assert keys.user_api_key[:12] in stored
        assert keys.user_api_key not in stored and keys.org_api_key not in stored

        assert api.delete(f"/api/connections/{connection_id}", headers=keys.bearer).status_code == 204
        assert_envelope(api.get(f"/api/connections/{connection_id}", headers=keys.bearer), 404, "not_found")
        assert connection_ids(api, keys.bearer) == []
        assert await fetch(database, "SELECT id FROM connections") == []

    assert "migrations applied" in cli_ok(instance, "migrate").stdout

    # Readiness follows the store: with the database gone, /readyz says so and /healthz stays up.
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    finally:
        await admin.close()
    ready = httpx.get(instance.url + "/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "store": "unreachable"}
    assert httpx.get(instance.url + "/healthz", timeout=30).status_code == 200

    for needle in (SECRET, keys.user_api_key, keys.org_api_key):
        assert needle not in instance.logs()


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"], ["keys", "list"]])
def test_a_replica_without_the_shared_master_keys_refuses_to_start(
    tmp_path: Path, command: list[str]
) -> None:
    """On a shared store no process generates a key of its own: it would encrypt rows that no
    other replica can read. It exits at once, naming the setting, and writes no key file."""
    env = server_env(
        tmp_path,
        KEYHOLE_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        KEYHOLE_MASTER_KEYS="",
        KEYHOLE_JOB_ENGINE="procrastinate",
    )
    started = subprocess.run(
        [PYTHON, "-m", "keyhole.cli", *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 2, started.stdout + started.stderr
    assert "KEYHOLE_MASTER_KEYS is required" in started.stderr
    assert "Traceback" not in started.stderr
    assert not (tmp_path / "master.keys").exists()


def test_new_master_prints_a_key_the_settings_accept() -> None:
    printed = subprocess.run(
        [PYTHON, "-m", "keyhole.cli", "keys", "new-master"], capture_output=True, text=True, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    (key,) = parse_keys(printed.stdout.strip())
    assert len(key.key) == 32
