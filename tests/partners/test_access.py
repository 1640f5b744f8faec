"""A partner key reaches organizations, users, keys and shared connections only, through every
dialect and header spelling; Basic credentials name an organization the key may act for."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from composio.conftest import envelope
from conftest import KeyholeServer
from foundation.helpers import assert_envelope

from .support import Partner


def _basic(organization_id: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{organization_id}:{key}".encode()).decode()}


RESOURCE_ROUTES = [
    ("GET", "/api/connections", None),
    (
        "POST",
        "/api/connections",
        {"name": "x", "type": "api", "configuration": {"url": "http://127.0.0.1:9"}},
    ),
    ("GET", "/api/connection_types", None),
    ("POST", f"/api/connections/{uuid.uuid4()}/proxy", {"request": {"method": "GET", "path": "/"}}),
    ("POST", f"/api/connections/{uuid.uuid4()}/query", {"query": "select 1"}),
    ("GET", f"/api/queries/{uuid.uuid4()}", None),
    ("GET", f"/api/jobs/connectionproxy/{uuid.uuid4()}", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), RESOURCE_ROUTES, ids=[f"{m} {p}" for m, p, _ in RESOURCE_ROUTES]
)
def test_a_partner_key_cannot_use_an_organizations_resources(
    partner: Partner, api: httpx.Client, method: str, path: str, body: object
) -> None:
    for headers in (
        partner.bearer,
        {"x-api-key": partner.partner_api_key},
        _basic(partner.organization_id, partner.partner_api_key),
    ):
        response = api.request(method, path, json=body, headers=headers)
        assert_envelope(response, 403, "partner_key_not_allowed")


def test_a_partner_key_cannot_use_the_composio_dialect(partner: Partner, api: httpx.Client) -> None:
    for path in ("/api/v3/connected_accounts", "/api/v3.1/auth_configs", "/api/v3/toolkits"):
        response = api.get(path, headers={"x-api-key": partner.partner_api_key})
        envelope(response, 403)


def test_basic_credentials_name_an_organization_the_key_may_act_for(
    server: KeyholeServer, partner: Partner, other_partner: Partner, api: httpx.Client
) -> None:
    child = api.post("/api/organizations", json={"name": "basic child"}, headers=partner.bearer).json()[
        "data"
    ]
    acting = api.get("/api/organization", headers=_basic(child["id"], partner.partner_api_key))
    assert acting.status_code == 200 and acting.json()["data"]["id"] == child["id"]
    for organization_id in (
        other_partner.organization_id,
        str(uuid.uuid4()),
        "not-a-uuid",
        child["id"] + "x",
    ):
        refused = api.get("/api/organization", headers=_basic(organization_id, partner.partner_api_key))
        assert_envelope(refused, 401, "invalid_api_key")
    # An organization key names its own organization only; a user key never goes in Basic.
    assert_envelope(api.get("/api/organization", headers=_basic(child["id"], partner.keys.org_api_key)), 401)
    assert_envelope(
        api.get("/api/organization", headers=_basic(partner.organization_id, partner.keys.user_api_key)), 401
    )


def test_cli_mints_partner_keys_for_owner_organizations_only(
    server: KeyholeServer, partner: Partner, api: httpx.Client
) -> None:
    child = api.post("/api/organizations", json={"name": "no nesting"}, headers=partner.bearer).json()["data"]
    refused = server.cli("keys", "create", "--organization", child["id"], "--partner", check=False)
    assert refused.returncode == 1 and "partner" in refused.stderr
    minted = server.cli("keys", "create", "--organization", partner.organization_id, "--partner")
    key = httpx.Response(200, content=minted.stdout.strip().splitlines()[-1]).json()["api_key"]
    assert key.startswith("kh_p_")
    listed = api.get("/api/organizations", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200 and child["id"] in [item["id"] for item in listed.json()["data"]]
