"""A shared copy edited in the console: a partner shares an organization's connection into a
customer organization, whose user renames the copy on its edit page. Only the copy's name
changes; the parent keeps its configuration and credential, which the copy still uses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from partners.support import Partner, bootstrap_partner
from sharing.support import share_path

from .conftest import ConsoleServer
from .connection_pages import as_posted, parse, proxied
from .support import ConsoleClient, sign_in

PASSWORD = f"owner-{uuid.uuid4().hex}"
CHECK = f"/basic-auth/u/{PASSWORD}"  # httpbin answers 200 only to this very password


@dataclass(frozen=True)
class Shared:
    owner: httpx.Client  # the parent organization's REST API, as its admin user
    customer: httpx.Client  # the customer organization's REST API, as its user
    customer_key: str  # that user's key, to sign in to the console
    parent_id: str
    copy_id: str


def _data(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def _customer(http: httpx.Client, partner: Partner) -> tuple[str, str]:
    """A new organization the partner creates, and the key of a user it adds to it."""
    headers = partner.bearer
    organization = _data(http.post("/api/organizations", json={"name": "customer"}, headers=headers))
    users = f"/api/organizations/{organization['id']}/users"
    user = _data(http.post(users, json={"email": "cleo@customer.test", "role": "admin"}, headers=headers))
    key = _data(http.post(f"{users}/{user['id']}/keys", json={}, headers=headers))["value"]
    return str(organization["id"]), str(key)


@pytest.fixture(scope="module")
def shared(console_server: ConsoleServer, httpbin_url: str) -> Iterator[Shared]:
    suffix = uuid.uuid4().hex[:8]
    partner = bootstrap_partner(console_server.server, f"console-partner-{suffix}", f"pia@{suffix}.test")
    with httpx.Client(base_url=console_server.url, timeout=30) as http:
        customer_id, customer_key = _customer(http, partner)
    owner_auth = {"Authorization": f"Bearer {partner.keys.user_api_key}"}
    with (
        httpx.Client(base_url=console_server.url, headers=owner_auth, timeout=30) as owner,
        httpx.Client(
            base_url=console_server.url, headers={"Authorization": f"Bearer {customer_key}"}, timeout=30
        ) as customer,
    ):
        parent = _data(
            owner.post(
                "/api/connections",
                json={
                    "name": "Owner's API",
                    "type": "api",
                    "configuration": {
                        "url": httpbin_url,
                        "auth": {"type": "basic", "username": "u", "password": PASSWORD},
                    },
                    "validate": False,
                },
            )
        )
        copy = _data(
            owner.post(
                share_path(partner.organization_id, parent["id"]),
                json={"child_organization_id": customer_id, "name": "From the owner"},
                headers=partner.bearer,
            )
        )
        yield Shared(owner, customer, customer_key, parent["id"], copy["id"])


@pytest.fixture
def client(console_server: ConsoleServer, shared: Shared) -> Iterator[ConsoleClient]:
    signed_in = sign_in(console_server.url, shared.customer_key)
    yield signed_in
    signed_in.http.close()


def test_renaming_a_shared_copy_changes_its_name_only(client: ConsoleClient, shared: Shared) -> None:
    parent_before = _data(shared.owner.get(f"/api/connections/{shared.parent_id}"))
    base = f"/console/connections/{shared.copy_id}"
    page = client.get(f"{base}/edit")
    assert page.status_code == 200
    assert "only its name can change here" in page.text
    parsed = parse(page.text)
    assert [control.name for control in parsed.controls if control.name != "csrf_token"] == ["name"]

    saved = client.post(f"{base}/edit", as_posted(parsed, {"name": "Owner's API, our name"}))
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{base}?done=saved"
    assert _data(shared.customer.get(f"/api/connections/{shared.copy_id}"))["name"] == "Owner's API, our name"

    parent_after = _data(shared.owner.get(f"/api/connections/{shared.parent_id}"))
    assert parent_after == parent_before
    # The copy still calls with the parent's credential.
    assert proxied(shared.customer, shared.copy_id, CHECK).json()["data"]["status"] == 200


def test_a_shared_copys_edit_page_takes_no_configuration(client: ConsoleClient, shared: Shared) -> None:
    parent_before = _data(shared.owner.get(f"/api/connections/{shared.parent_id}"))
    copy_before = _data(shared.customer.get(f"/api/connections/{shared.copy_id}"))
    refused = client.post(
        f"/console/connections/{shared.copy_id}/edit",
        [("name", "Moved"), ("config/url", "http://127.0.0.1:9"), ("config/auth/type", "none")],
    )
    assert refused.status_code == 400 and "unexpected_field" in refused.text
    assert _data(shared.customer.get(f"/api/connections/{shared.copy_id}")) == copy_before
    assert _data(shared.owner.get(f"/api/connections/{shared.parent_id}")) == parent_before
