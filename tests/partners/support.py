"""A partner account on a live server: its owner organization's keys, and SDK clients."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
from polytomic import Polytomic

from conftest import KeyholeServer, Keys


@dataclass(frozen=True)
class Partner:
    keys: Keys  # the owner organization's admin user and organization keys
    partner_api_key: str

    @property
    def organization_id(self) -> str:
        return self.keys.organization_id

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.partner_api_key}"}


def bootstrap_partner(server: KeyholeServer, org: str, user: str) -> Partner:
    result = server.cli("bootstrap", "--org", org, "--user", user, "--partner")
    minted = json.loads(result.stdout.strip().splitlines()[-1])
    partner_api_key = minted.pop("partner_api_key")
    return Partner(Keys(**minted), partner_api_key)


def sdk(server: KeyholeServer, key: str) -> Polytomic:
    # No retries: a 5xx must surface as a failure instead of being retried away.
    return Polytomic(base_url=server.url, token=key, max_retries=0)


def organization_names(client: httpx.Client, partner: Partner) -> list[str]:
    response = client.get("/api/organizations", headers=partner.bearer)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["data"]]
