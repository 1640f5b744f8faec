"""Who may read the organization-wide log: the organization's admins and organization keys;
members and partner keys are told which credential would do."""

from __future__ import annotations

import httpx

from conftest import KeyholeServer
from foundation.helpers import assert_envelope

from .conftest import Population
from .support import LOG, member_key, partner_key, records


def test_admin_user_keys_and_organization_keys_read_the_log(
    server: KeyholeServer, population: Population
) -> None:
    keys = population.owner.keys
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for headers in (
            keys.bearer,
            keys.basic,
            {"Authorization": f"Bearer {keys.org_api_key}"},
        ):
            client.headers.clear()
            client.headers.update(headers)
            assert records(client) == population.listed


def test_members_and_partner_keys_are_refused(server: KeyholeServer, population: Population) -> None:
    member = member_key(server, population.owner)
    partner = partner_key(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        as_member = client.get(LOG, headers={"Authorization": f"Bearer {member}"})
        body = assert_envelope(as_member, 403, "admin_required")
        assert "admin" in body["message"]
        # The member's key works where members may go: the refusal is about the role.
        connection = population.connections["a"]
        allowed = client.get(
            f"/api/connections/{connection}/proxy/calls", headers={"Authorization": f"Bearer {member}"}
        )
        assert allowed.status_code == 200, allowed.text

        as_partner = client.get(LOG, headers={"Authorization": f"Bearer {partner}"})
        assert_envelope(as_partner, 403, "partner_key_not_allowed")

        for headers in ({}, {"Authorization": "Bearer kh_not_a_key"}):
            refused = client.get(LOG, headers=headers)
            assert_envelope(refused, 401)
            assert population.calls["a_ok"] not in refused.text
