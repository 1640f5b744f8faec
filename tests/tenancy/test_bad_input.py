"""Bad input on every user, key and identity endpoint: a clear 4xx in the Polytomic envelope, and
nothing written."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support import World, assert_envelope, bearer, keys_of, users_of

TOO_LARGE = 1_048_576 + 1  # one byte over the default KEYHOLE_MAX_API_BODY_BYTES

# (raw body, status, key)
BAD_BODIES: list[tuple[bytes, int, str]] = [
    (b'{"email": ', 400, "malformed_json"),
    (b'{"email": "\xff@example.test"}', 400, "malformed_json"),  # not UTF-8
    (b"[" * 100_000, 400, "malformed_json"),  # nested past any parser's depth
    (b"[]", 400, "invalid_body"),
    (b'"a@example.test"', 400, "invalid_body"),
    (b"null", 400, "invalid_body"),
    (b'{"email": 5}', 400, "validation_error"),
    (b'{"email": ["a@example.test"]}', 400, "validation_error"),
    (b'{"email": "a@example.test", "role": 1}', 400, "validation_error"),
    (b'{"email": "a@example.test", "role": true}', 400, "validation_error"),
    (b'{"email": "a@example.test", "role_ids": "admin"}', 400, "validation_error"),
    (b'{"email": "a@example.test", "role_ids": [1]}', 400, "validation_error"),
    (b'{"email": "a@example.test", "name": "A"}', 400, "validation_error"),  # unknown field
    (b'{"email": "a@example.test", "Role": "admin"}', 400, "validation_error"),
    (b'{"email": "a@example.test", "harbor_ids": []}', 400, "validation_error"),
    (b'{"email": "' + b"a" * TOO_LARGE + b'@example.test"}', 413, "body_too_large"),
    (b'{"email": "a\\u0000b@example.test"}', 422, "invalid_email"),
    (b'{"email": "a\\nb@example.test"}', 422, "invalid_email"),
    (b'{"email": "a\\u202eb@example.test"}', 422, "invalid_email"),  # right-to-left override
    (b'{"email": "a\\u200b@example.test"}', 422, "invalid_email"),  # zero-width space
    (b'{"email": "x@y.test\'; DROP TABLE users; --"}', 422, "invalid_email"),
    (b'{"email": "a@b@example.test"}', 422, "invalid_email"),
    (b'{"email": "' + b"a" * 320 + b'@example.test"}', 422, "invalid_email"),
    (b'{"email": "a@example.test", "role": "admin\\u0000"}', 422, "invalid_role"),
    (b'{"email": "a@example.test", "role": "Admin"}', 422, "invalid_role"),
    (b'{"email": "a@example.test", "role": "owner"}', 422, "invalid_role"),
    (b'{"email": "a@example.test", "role_ids": []}', 422, "invalid_role"),
    (b'{"email": "a@example.test", "role_ids": ["admin", "admin"]}', 422, "invalid_role"),
    (b'{"email": "a@example.test", "role": "admin", "role_ids": ["admin"]}', 422, "role_conflict"),
]
# Bodies a create refuses that an update (no email needed, empty means no change) may not.
CREATE_ONLY: list[tuple[bytes, int, str]] = [
    (b"", 400, "invalid_body"),
    (b"{}", 400, "validation_error"),
    (b'{"role": "admin"}', 400, "validation_error"),
    (b'{"email": null}', 400, "validation_error"),
]
HOSTILE_IDS = [
    "not-a-uuid",
    "00000000-0000-4000-8000-00000000000",  # one digit short
    "00000000-0000-4000-8000-0000000000000",
    "{00000000-0000-4000-8000-000000000000}",
    "urn:uuid:00000000-0000-4000-8000-000000000000",
    "' OR '1'='1",
    "%00",
    "%2e%2e",
    "a" * 4000,
    "\u202e\u0000",
    "${jndi:ldap://x}",
]


def snapshot(client: httpx.Client, world: World) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    child = world.child.organization_id
    return users_of(client, child, world.child.org_key), keys_of(client, child, world.child.org_key)


def send(client: httpx.Client, method: str, path: str, key: str, body: bytes | None = None) -> httpx.Response:
    headers = bearer(key)
    if body is not None:
        headers["content-type"] = "application/json"
    return client.request(method, path, content=body, headers=headers)


def user_paths(world: World) -> list[str]:
    return ["/api/organization/users", f"/api/organizations/{world.child.organization_id}/users"]


@pytest.mark.parametrize("case", range(len(BAD_BODIES) + len(CREATE_ONLY)))
def test_bad_bodies_to_create_a_user(world: World, client: httpx.Client, case: int) -> None:
    body, status, key = [*BAD_BODIES, *CREATE_ONLY][case]
    before = snapshot(client, world)
    for path in user_paths(world):
        assert_envelope(send(client, "POST", path, world.child.admin_key, body), status, key)
    assert snapshot(client, world) == before


@pytest.mark.parametrize("case", range(len(BAD_BODIES)))
def test_bad_bodies_to_update_a_user(world: World, client: httpx.Client, case: int) -> None:
    body, status, key = BAD_BODIES[case]
    before = snapshot(client, world)
    for path in user_paths(world):
        response = send(client, "PUT", f"{path}/{world.child.member_id}", world.child.admin_key, body)
        assert_envelope(response, status, key)
    assert snapshot(client, world) == before


@pytest.mark.parametrize(
    ("body", "query", "status", "key"),
    [
        (b'{"force": true}', "", 400, "validation_error"),  # force is a query parameter, not a field
        (b'{"force": ', "", 400, "malformed_json"),
        (b"[]", "", 400, "invalid_body"),
        (b"", "?force=maybe", 400, "validation_error"),
        (b"", "?force=yes", 400, "validation_error"),
        (b"", "?force=%00", 400, "validation_error"),
        (b"{" + b" " * TOO_LARGE + b"}", "", 413, "body_too_large"),
    ],
)
def test_bad_requests_to_mint_a_key(
    world: World, client: httpx.Client, body: bytes, query: str, status: int, key: str
) -> None:
    before = snapshot(client, world)
    path = f"/api/organizations/{world.child.organization_id}/users/{world.child.member_id}/keys{query}"
    assert_envelope(send(client, "POST", path, world.owner.partner_api_key, body or None), status, key)
    assert snapshot(client, world) == before


@pytest.mark.parametrize(
    "prefix",
    ["kh_u_" + "A" * 40, "kh%", "kh_u_'", "kh_u_\x00", "kh u", "kh_u_/", "ключ", "a" * 13],
)
def test_bad_key_prefixes(world: World, client: httpx.Client, prefix: str) -> None:
    for path in ("/api/organization/keys", f"/api/organizations/{world.child.organization_id}/keys"):
        response = client.get(path, params={"prefix": prefix}, headers=bearer(world.child.admin_key))
        body = assert_envelope(response, 400, "invalid_prefix")
        assert prefix not in body["message"]


def hostile_requests(world: World, hostile: str) -> list[tuple[str, str]]:
    child = world.child.organization_id
    member = world.child.member_id
    return [
        ("GET", f"/api/organization/users/{hostile}"),
        ("PUT", f"/api/organization/users/{hostile}"),
        ("DELETE", f"/api/organization/users/{hostile}"),
        ("DELETE", f"/api/organization/keys/{hostile}"),
        ("GET", f"/api/organizations/{hostile}/users"),
        ("POST", f"/api/organizations/{hostile}/users"),
        ("GET", f"/api/organizations/{hostile}/keys"),
        ("DELETE", f"/api/organizations/{hostile}/keys/{hostile}"),
        ("GET", f"/api/organizations/{child}/users/{hostile}"),
        ("PUT", f"/api/organizations/{child}/users/{hostile}"),
        ("DELETE", f"/api/organizations/{child}/users/{hostile}"),
        ("POST", f"/api/organizations/{child}/users/{hostile}/keys"),
        ("POST", f"/api/organizations/{hostile}/users/{member}/keys"),
        ("DELETE", f"/api/organizations/{child}/keys/{hostile}"),
    ]


def assert_not_found_for(world: World, client: httpx.Client, hostile: str) -> None:
    for method, path in hostile_requests(world, hostile):
        body = (
            b'{"email": "h@example.test"}' if method in ("POST", "PUT") and path.endswith("users") else None
        )
        response = send(client, method, path, world.owner.partner_api_key, body)
        assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_hostile_ids_are_not_found(world: World, client: httpx.Client, hostile: str) -> None:
    before = snapshot(client, world)
    assert_not_found_for(world, client, hostile if hostile.startswith("%") else quote(hostile, safe=""))
    assert snapshot(client, world) == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile=st.text(min_size=1, max_size=80).filter(lambda text: text.strip(".") != ""))
def test_any_id_is_not_found(world: World, client: httpx.Client, hostile: str) -> None:
    before = snapshot(client, world)
    assert_not_found_for(world, client, quote(hostile, safe=""))
    assert snapshot(client, world) == before


def test_bad_credentials_on_every_endpoint(world: World, client: httpx.Client) -> None:
    before = snapshot(client, world)
    paths = [("GET", "/api/me"), *hostile_requests(world, world.child.member_id)]
    for headers in ({}, bearer("kh_u_" + "x" * 43), {"Authorization": "Basic !!!"}, bearer("k" * 600)):
        for method, path in paths:
            response = client.request(method, path, headers=headers)
            assert_envelope(response, 401)
    assert snapshot(client, world) == before
