"""Tenancy through the `keyhole` CLI: bootstrap, key listing, minting, revocation, storage."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from conftest import KeyholeServer, Keys

from .helpers import assert_envelope, basic, bootstrap_keys, cli_ok, db_files, leaks

T = TypeVar("T")
BOOTSTRAP_KEYS = {"organization_id", "user_id", "user_api_key", "org_api_key"}


def cli_json(server: KeyholeServer, *args: str) -> Any:
    result = cli_ok(server, *args)
    return json.loads(result.stdout)


def bootstrap(server: KeyholeServer, org: str, user: str) -> tuple[dict[str, str], str]:
    result = cli_ok(server, "bootstrap", "--org", org, "--user", user)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    document = json.loads(lines[0])
    assert isinstance(document, dict)
    assert set(document) == BOOTSTRAP_KEYS
    return document, result.stdout + result.stderr


def parallel(*work: Callable[[], T]) -> list[T]:
    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        return [future.result() for future in [pool.submit(item) for item in work]]


def status(server: KeyholeServer, headers: dict[str, str]) -> int:
    return httpx.get(server.url + "/api/connections", headers=headers, timeout=30).status_code


def test_bootstrap_prints_one_object_and_reuses_org_and_user(server: KeyholeServer) -> None:
    org = f"cli-org-{uuid.uuid4().hex[:8]}"
    first, output = bootstrap(server, org, "carol@c.test")
    uuid.UUID(first["organization_id"])
    uuid.UUID(first["user_id"])
    assert first["user_api_key"].startswith("kh_u_")
    assert first["org_api_key"].startswith("kh_o_")
    assert output.count(first["user_api_key"]) == 1  # printed once, never logged
    assert output.count(first["org_api_key"]) == 1

    (second, _), (third, _) = parallel(
        lambda: bootstrap(server, org, "carol@c.test"), lambda: bootstrap(server, org, "dave@c.test")
    )
    assert second["organization_id"] == first["organization_id"]
    assert second["user_id"] == first["user_id"]
    assert second["user_api_key"] != first["user_api_key"]
    assert second["org_api_key"] != first["org_api_key"]

    assert third["organization_id"] == first["organization_id"]
    assert third["user_id"] != first["user_id"]

    for keys in (first, second, third):
        assert status(server, {"Authorization": f"Bearer {keys['user_api_key']}"}) == 200
        assert status(server, basic(keys["organization_id"], keys["org_api_key"])) == 200

    listed = cli_json(server, "keys", "list", "--organization", first["organization_id"])
    assert len(listed) == 6
    assert {entry["organization_id"] for entry in listed} == {first["organization_id"]}
    assert sorted(entry["kind"] for entry in listed) == ["org"] * 3 + ["user"] * 3


def test_keys_list_shows_prefixes_only(server: KeyholeServer, org_a: Keys, org_b: Keys) -> None:
    result = cli_ok(server, "keys", "list")
    listed = json.loads(result.stdout)
    for secret in (org_a.user_api_key, org_a.org_api_key, org_b.user_api_key, org_b.org_api_key):
        assert secret not in result.stdout
        assert secret not in result.stderr
    mine = {entry["prefix"]: entry for entry in listed if entry["organization_id"] == org_a.organization_id}
    assert org_a.user_api_key[:12] in mine
    assert org_a.org_api_key[:12] in mine
    assert mine[org_a.user_api_key[:12]]["kind"] == "user"
    assert mine[org_a.user_api_key[:12]]["user_id"] == org_a.user_id
    assert mine[org_a.org_api_key[:12]]["kind"] == "org"
    assert mine[org_a.org_api_key[:12]]["user_id"] is None
    for entry in listed:
        assert len(entry["prefix"]) <= 12
        assert set(entry) == {
            "id",
            "organization_id",
            "user_id",
            "kind",
            "prefix",
            "name",
            "created_at",
            "revoked_at",
        }


def test_keys_create_for_organization_and_user(server: KeyholeServer, org_a: Keys, org_b: Keys) -> None:
    unknown_org = str(uuid.uuid4())
    # Independent CLI runs go in parallel to keep the suite quick.
    org_run, user_run, foreign_user_run, unknown_org_run = parallel(
        lambda: cli_ok(server, "keys", "create", "--organization", org_a.organization_id, "--name", "ci"),
        lambda: cli_ok(
            server, "keys", "create", "--organization", org_a.organization_id, "--user", org_a.user_id
        ),
        lambda: server.cli(
            "keys", "create", "--organization", org_a.organization_id, "--user", org_b.user_id, check=False
        ),
        lambda: server.cli("keys", "create", "--organization", unknown_org, check=False),
    )
    org_key = json.loads(org_run.stdout)
    assert org_key["kind"] == "org"
    assert org_key["api_key"].startswith("kh_o_")
    assert status(server, basic(org_a.organization_id, org_key["api_key"])) == 200
    assert status(server, {"x-api-key": org_key["api_key"]}) == 200
    assert status(server, basic(org_b.organization_id, org_key["api_key"])) == 401

    user_key = json.loads(user_run.stdout)
    assert user_key["kind"] == "user"
    assert user_key["api_key"].startswith("kh_u_")
    assert status(server, {"Authorization": f"Bearer {user_key['api_key']}"}) == 200
    assert status(server, basic(org_a.organization_id, user_key["api_key"])) == 401

    # A user of another organization, or an unknown organization: refused, nothing minted.
    for refused in (foreign_user_run, unknown_org_run):
        assert refused.returncode != 0
        assert "not found" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert "kh_" not in refused.stdout

    listed = cli_json(server, "keys", "list")
    by_id = {entry["id"]: entry for entry in listed}
    assert by_id[org_key["id"]]["name"] == "ci"
    assert by_id[org_key["id"]]["prefix"] == org_key["api_key"][:12]
    assert by_id[org_key["id"]]["organization_id"] == org_a.organization_id
    assert by_id[user_key["id"]]["user_id"] == org_a.user_id
    assert not [
        e for e in listed if e["user_id"] == org_b.user_id and e["organization_id"] != org_b.organization_id
    ]
    assert not [e for e in listed if e["organization_id"] == unknown_org]


def test_x_api_key_headers(server: KeyholeServer, org_a: Keys) -> None:
    for header in ("x-api-key", "x-user-api-key", "x-org-api-key"):
        assert status(server, {header: org_a.user_api_key}) == 200
        assert status(server, {header: org_a.org_api_key}) == 200
    response = httpx.get(server.url + "/api/connections", headers={"x-api-key": "kh_u_nope"})
    assert_envelope(response, 401, "invalid_api_key")


def revoke(server: KeyholeServer, key_id: str) -> None:
    revoked = cli_json(server, "keys", "revoke", key_id)
    assert revoked["id"] == key_id
    assert revoked["revoked_at"]


def test_revoked_key_stops_at_once_without_cache(make_server: Callable[..., KeyholeServer]) -> None:
    instance = make_server(KEYHOLE_CACHE_TTL_SECONDS="0")
    keys = bootstrap_keys(instance, "revoke-org", "erin@r.test")
    user_headers = {"Authorization": f"Bearer {keys.user_api_key}"}
    assert status(instance, user_headers) == 200
    assert status(instance, {"x-api-key": keys.user_api_key}) == 200

    listed_run, unknown = parallel(
        lambda: cli_ok(instance, "keys", "list", "--organization", keys.organization_id),
        lambda: instance.cli("keys", "revoke", str(uuid.uuid4()), check=False),
    )
    assert unknown.returncode != 0
    assert "not found" in unknown.stderr
    listed = json.loads(listed_run.stdout)
    assert len(listed) == 2
    user_key_id = next(entry["id"] for entry in listed if entry["prefix"] == keys.user_api_key[:12])
    revoke(instance, user_key_id)
    assert_envelope(
        httpx.get(instance.url + "/api/connections", headers=user_headers), 401, "invalid_api_key"
    )
    assert status(instance, {"x-api-key": keys.user_api_key}) == 401
    # The organization's other key is untouched.
    assert status(instance, basic(keys.organization_id, keys.org_api_key)) == 200


def test_revoked_key_stops_within_the_cache_ttl(server: KeyholeServer, org_a: Keys) -> None:
    minted = cli_json(server, "keys", "create", "--organization", org_a.organization_id)
    variants = [{"x-api-key": minted["api_key"]}, basic(org_a.organization_id, minted["api_key"])]
    for headers in variants:
        assert status(server, headers) == 200  # now cached by the server
    revoke(server, minted["id"])
    deadline = time.monotonic() + 3.0
    for headers in variants:
        while status(server, headers) != 401:
            assert time.monotonic() < deadline, "a revoked key was still accepted 3 s after revocation"
            time.sleep(0.1)
    assert status(server, org_a.basic) == 200


def test_api_keys_are_not_stored_in_clear(server: KeyholeServer, org_a: Keys, org_b: Keys) -> None:
    minted = cli_json(server, "keys", "create", "--organization", org_b.organization_id)
    secrets = [
        org_a.user_api_key,
        org_a.org_api_key,
        org_b.user_api_key,
        org_b.org_api_key,
        minted["api_key"],
    ]
    assert status(server, {"x-api-key": minted["api_key"]}) == 200
    files = db_files(server.home)
    assert files, "the SQLite store was not found"
    blobs = {path.name: path.read_bytes() for path in files}
    # The listing's prefixes are in the store: proof that the scan reads the right data.
    assert any(org_a.user_api_key[:12].encode() in blob for blob in blobs.values())
    blobs["server.log"] = server.logs().encode()
    assert leaks(blobs, secrets) == []
