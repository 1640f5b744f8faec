"""A partner account with two child organizations on a live server, and the calls the shared
connection tests make through the official SDK or raw HTTP."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from polytomic import Polytomic

from conftest import KeyholeServer, Keys

REDACTED = "[REDACTED]"


@dataclass(frozen=True)
class Child:
    organization_id: str
    org_api_key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.org_api_key}"}


@dataclass(frozen=True)
class PartnerAccount:
    """The owner organization (its admin user's and organization keys), the partner key, and two
    child organizations, each with an organization key."""

    owner: Keys
    partner_api_key: str
    child_a: Child
    child_b: Child

    @property
    def partner(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.partner_api_key}"}


def sdk(server: KeyholeServer, key: str) -> Polytomic:
    # No retries: a 5xx must surface as a failure instead of being retried away.
    return Polytomic(base_url=server.url, token=key, max_retries=0, timeout=60)


def mint_org_key(server: KeyholeServer, organization_id: str) -> str:
    out = server.cli("keys", "create", "--organization", organization_id).stdout.strip().splitlines()[-1]
    return str(json.loads(out)["api_key"])


def partner_account(server: KeyholeServer, client: httpx.Client) -> PartnerAccount:
    suffix = uuid.uuid4().hex[:8]
    result = server.cli(
        "bootstrap", "--org", f"partner-{suffix}", "--user", f"owner@{suffix}.test", "--partner"
    )
    minted = json.loads(result.stdout.strip().splitlines()[-1])
    partner_api_key = minted.pop("partner_api_key")
    children = []
    for name in ("child-a", "child-b"):
        response = client.post(
            "/api/organizations", json={"name": name}, headers={"Authorization": f"Bearer {partner_api_key}"}
        )
        assert response.status_code == 200, response.text
        organization_id = response.json()["data"]["id"]
        children.append(Child(organization_id, mint_org_key(server, organization_id)))
    return PartnerAccount(Keys(**minted), partner_api_key, children[0], children[1])


def create_connection(
    client: httpx.Client, headers: dict[str, str], type_id: str, configuration: dict[str, Any]
) -> str:
    response = client.post(
        "/api/connections",
        json={
            "name": f"parent-{uuid.uuid4().hex[:8]}",
            "type": type_id,
            "configuration": configuration,
            "validate": False,
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def share_path(organization_id: str, connection_id: str) -> str:
    return f"/api/organizations/{organization_id}/connections/{connection_id}/shared"


def share(client: httpx.Client, account: PartnerAccount, parent: str, child: Child, **body: Any) -> str:
    """The copy's id, shared by the partner from the owner organization with ``child``."""
    response = client.post(
        share_path(account.owner.organization_id, parent),
        json={"child_organization_id": child.organization_id, **body},
        headers=account.partner,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def proxy(client: httpx.Client, connection_id: str, auth: dict[str, str], **request: Any) -> httpx.Response:
    """A proxy call with ``auth`` (the caller's credential header); ``request`` as the body's."""
    return client.post(f"/api/connections/{connection_id}/proxy", json={"request": request}, headers=auth)


def proxied(client: httpx.Client, connection_id: str, auth: dict[str, str], **request: Any) -> dict[str, Any]:
    """``data`` of a proxy call the proxy itself accepted (whatever the upstream answered)."""
    response = proxy(client, connection_id, auth, **request)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def data_of(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]
