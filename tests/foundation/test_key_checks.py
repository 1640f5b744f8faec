"""A process whose master keys cannot read the store refuses to start; one unreadable row is
reported as unreadable and never fails a list or turns into a 500."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conftest import PYTHON, KeyholeServer, free_port, server_env
from keyhole.store.database import Database
from keyhole.store.migrate import upgrade
from keyhole.vault import KeyRing, Vault
from keyhole.vault.checks import ForeignKeyRing, verify_key_ring
from keyhole.vault.keyring import MasterKey, generate_key, parse_keys
from keyhole.vault.rotation import row_aad

from .helpers import REDACTED, bootstrap_keys, cli_ok, proxy_call

SECRET = "tok-KEY-CHECK-SECRET-9b1f"


def _ring(kid: str = "test") -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def _start_refused(home: Path, env: dict[str, str], command: str = "serve") -> str:
    """Run `keyhole COMMAND`; it must exit (not serve) and say why on stderr."""
    args = [PYTHON, "-m", "keyhole.cli", command]
    if command == "serve":
        args += ["--port", str(free_port())]
    try:
        result = subprocess.run(args, env=env, cwd=home, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:  # pragma: no cover - the defect this test exists for
        pytest.fail(f"keyhole {command} kept running with master keys that cannot read the store")
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr


def _create(api: httpx.Client, headers: dict[str, str], name: str, url: str) -> str:
    created = api.post(
        "/api/connections",
        json={
            "name": name,
            "type": "api",
            "configuration": {"url": url, "auth": {"type": "bearer", "token": SECRET}},
        },
        headers=headers,
    )
    assert created.status_code == 200, created.text
    return str(created.json()["data"]["id"])


@pytest.mark.postgres
async def test_a_replica_with_other_master_keys_refuses_to_start(
    database: str, make_server: Callable[..., KeyholeServer], httpbin_url: str, tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    shared = _ring("test")
    first = make_server(KEYHOLE_DATABASE_URL=url, KEYHOLE_MASTER_KEYS=shared)
    keys = bootstrap_keys(first, "ring-org", "r@ring.test")
    with httpx.Client(base_url=first.url, timeout=30) as api:
        connection_id = _create(api, keys.bearer, "shared", httpbin_url)

    def env(**overrides: str) -> dict[str, str]:
        base = server_env(tmp_path, KEYHOLE_DATABASE_URL=url, **overrides)
        if "KEYHOLE_MASTER_KEYS" not in overrides:
            base.pop("KEYHOLE_MASTER_KEYS")
        return base

    same_id_other_key = _start_refused(tmp_path, env(KEYHOLE_MASTER_KEYS=_ring("test")))
    assert "master key 'test' is not the key 'test' this store is encrypted under" in same_id_other_key
    assert "KEYHOLE_MASTER_KEYS" in same_id_other_key

    other_id = _start_refused(tmp_path, env(KEYHOLE_MASTER_KEYS=_ring("other")))
    assert "hold none of the keys this store is encrypted under" in other_id
    assert "the store's: test; these: other" in other_id

    missing = _start_refused(tmp_path, env())
    assert "KEYHOLE_MASTER_KEYS is required" in missing

    worker = _start_refused(
        tmp_path, env(KEYHOLE_MASTER_KEYS=_ring("test"), KEYHOLE_JOB_ENGINE="procrastinate"), "worker"
    )
    assert "is not the key 'test'" in worker

    # A refused process wrote nothing: the store still holds only the first process's check.
    async with _store(url) as store:
        assert await _check_ids(store) == ["test"]

    # A ring mid-rotation (a new key in front of the shared one) reads the store and serves;
    # its new primary gets a check, so the old ring alone still starts too.
    rotated = make_server(KEYHOLE_DATABASE_URL=url, KEYHOLE_MASTER_KEYS=f"{_ring('next')},{shared}")
    async with _store(url) as store:
        assert await _check_ids(store) == ["next", "test"]
    with httpx.Client(timeout=30) as api:
        for server in (first, rotated):
            listed = api.get(f"{server.url}/api/connections", headers=keys.bearer)
            assert listed.status_code == 200, listed.text
            assert [item["status"] for item in listed.json()["data"]] == ["healthy"]
            called = api.post(
                f"{server.url}/api/connections/{connection_id}/proxy",
                json={"request": {"method": "GET", "path": "/bearer"}},
                headers=keys.bearer,
            )
            assert called.status_code == 200 and called.json()["data"]["status"] == 200, called.text


class _store:
    def __init__(self, url: str) -> None:
        self.database = Database(url)

    async def __aenter__(self) -> Database:
        return self.database

    async def __aexit__(self, *_: object) -> None:
        await self.database.dispose()


async def _check_ids(database: Database) -> list[str]:
    from sqlalchemy import select

    from keyhole.vault.models import MasterKeyCheck

    async with database.session() as session:
        return sorted((await session.execute(select(MasterKeyCheck.kid))).scalars())


async def test_two_processes_racing_with_one_key_id_cannot_both_win(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    await upgrade(url)
    database = Database(url)
    try:
        mine, theirs = MasterKey("k", os.urandom(32)), MasterKey("k", os.urandom(32))
        await verify_key_ring(database, Vault(KeyRing([mine])))
        with pytest.raises(ForeignKeyRing, match="is not the key 'k'"):
            await verify_key_ring(database, Vault(KeyRing([theirs])))
        await verify_key_ring(database, Vault(KeyRing([mine])))  # the rightful ring still starts
    finally:
        await database.dispose()


async def test_a_store_without_checks_is_judged_by_its_secrets(tmp_path: Path) -> None:
    """A store written before key checks existed: one ciphertext of each kind must open."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}"
    await upgrade(url)
    database = Database(url)
    old = generate_key("old")
    try:
        sealed = Vault(KeyRing([old])).encrypt_json(
            {"/auth/token": SECRET}, row_aad("connections", "c1", "secrets")
        )
        with sqlite3.connect(tmp_path / "legacy.db") as db:
            db.execute(
                "INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'legacy', '2026-01-01')"
            )
            db.execute(
                "INSERT INTO connections (id, organization_id, type_id, name, configuration, secrets, status,"
                " proxy_enabled, policies, created_at, updated_at) VALUES ('c1', 'o1', 'api', 'legacy',"
                " '{}', ?, 'healthy', 1, '[]', '2026-01-01', '2026-01-01')",
                (sealed,),
            )
        with pytest.raises(ForeignKeyRing, match="a stored secret does not open"):
            await verify_key_ring(database, Vault(KeyRing([generate_key("old")])))
        assert await _check_ids(database) == []
        await verify_key_ring(database, Vault(KeyRing([generate_key("new"), old])))
        assert await _check_ids(database) == ["new"]
    finally:
        await database.dispose()


def test_a_regenerated_key_file_is_refused_and_rotation_keeps_the_checks(
    tmp_path: Path, httpbin_url: str
) -> None:
    """The embedded store: a lost key file is not silently replaced, and after `rotate-master`
    and `remove-master` the ring that holds only the removed key no longer starts."""
    server = KeyholeServer(tmp_path, server_env(tmp_path)).start()
    try:
        keys = bootstrap_keys(server, "file-org", "f@file.test")
        with httpx.Client(base_url=server.url, timeout=30) as api:
            _create(api, keys.bearer, "filed", httpbin_url)
    finally:
        server.stop()
    key_file = tmp_path / "master.keys"
    original = key_file.read_text()
    key_file.unlink()
    refused = _start_refused(tmp_path, server_env(tmp_path))
    assert "hold none of the keys this store is encrypted under" in refused
    assert "master.keys" in refused

    key_file.write_text(original)
    old_kid = parse_keys(original)[0].kid
    cli_ok(server, "keys", "rotate-master")
    new_kid = parse_keys(key_file.read_text())[0].kid
    cli_ok(server, "keys", "remove-master", old_kid)
    server.start().stop()
    key_file.write_text(original)  # only the removed key
    refused = _start_refused(tmp_path, server_env(tmp_path))
    assert f"the store's: {new_kid}; these: {old_kid}" in refused


def test_one_unreadable_row_is_reported_not_fatal(
    make_server: Callable[..., KeyholeServer], httpbin_url: str
) -> None:
    server = make_server()
    keys = bootstrap_keys(server, "unreadable-org", "u@unreadable.test")
    with httpx.Client(base_url=server.url, timeout=30) as api:
        readable = _create(api, keys.bearer, "readable", httpbin_url)
        foreign = _create(api, keys.bearer, "foreign", httpbin_url)
        # The row as a replica with another key ring would have written it.
        sealed = Vault(KeyRing([generate_key("test")])).encrypt_json(
            {"/auth/token": SECRET}, row_aad("connections", foreign, "secrets")
        )
        with sqlite3.connect(server.home / "keyhole.db") as db:
            db.execute("UPDATE connections SET secrets = ? WHERE id = ?", (sealed, foreign))

        listed = api.get("/api/connections", headers=keys.bearer)
        assert listed.status_code == 200, listed.text
        by_id = {item["id"]: item for item in listed.json()["data"]}
        assert by_id[readable]["status"] == "healthy"
        assert by_id[readable]["configuration"]["auth"]["token"] == REDACTED
        assert by_id[foreign]["status"] == "unreadable"
        assert "KEYHOLE_MASTER_KEYS" in by_id[foreign]["status_error"]
        assert "token" not in by_id[foreign]["configuration"]["auth"]
        single = api.get(f"/api/connections/{foreign}", headers=keys.bearer)
        assert (single.status_code, single.json()["data"]["status"]) == (200, "unreadable")

        # Using it is a clear 503 in the dialect's envelope, never a 500 and never a call sent
        # without its credential.
        used = proxy_call(api, foreign, keys.bearer, "/bearer")
        assert used.status_code == 503, used.text
        assert used.json()["key"] == "secrets_unreadable"
        assert "KEYHOLE_MASTER_KEYS" in used.json()["message"]
        assert proxy_call(api, readable, keys.bearer, "/bearer").json()["data"]["status"] == 200
        accounts = api.get("/api/v3/connected_accounts", headers={"x-api-key": keys.user_api_key})
        assert accounts.status_code == 200, accounts.text
        statuses = {item["id"]: (item["status"], item["status_reason"]) for item in accounts.json()["items"]}
        assert statuses[readable][0] == "ACTIVE"
        assert statuses[foreign][0] == "FAILED" and "KEYHOLE_MASTER_KEYS" in statuses[foreign][1]
    assert SECRET not in server.logs()
