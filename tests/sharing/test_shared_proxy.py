"""A partner shares an HTTP connection with a child organization: the child proxies through its
copy with the parent's credential, never sees or changes it, and every change to the parent
(re-keying, disabling, deleting) reaches the copy at once. Driven with the official SDK and raw
HTTP against a live server and httpbin."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import httpx
import pytest
from polytomic import ConnectionProxyCall
from polytomic.errors import ForbiddenError, NotFoundError

from conftest import KeyholeServer
from foundation.helpers import assert_envelope

from .support import (
    REDACTED,
    PartnerAccount,
    create_connection,
    data_of,
    proxied,
    proxy,
    sdk,
    share,
    share_path,
)

SECRET = "shh_Sh4red_9pQ2xV7mK3wZ"
HEADER = "X-Api-Key"


def _header_connection(http: httpx.Client, account: PartnerAccount, httpbin_url: str, **extra: Any) -> str:
    configuration = {"url": httpbin_url, "auth": {"type": "header", "name": HEADER, "value": SECRET}, **extra}
    return create_connection(http, account.owner.bearer, "api", configuration)


def _rows(server: KeyholeServer, sql: str, *params: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.home / "keyhole.db") as db:
        return db.execute(sql, params).fetchall()


def _echoed_credential(http: httpx.Client, connection_id: str, headers: dict[str, str]) -> str:
    data = proxied(http, connection_id, headers, method="GET", path="/headers")
    assert data["status"] == 200 and SECRET not in data["body"]
    return str(json.loads(data["body"])["headers"][HEADER])


@pytest.fixture(scope="module")
def shared(http: httpx.Client, account: PartnerAccount, httpbin_url: str) -> tuple[str, str]:
    """(parent, copy in child A) that no test of this module changes."""
    parent = _header_connection(http, account, httpbin_url)
    return parent, share(http, account, parent, account.child_a)


def test_the_child_proxies_through_its_copy_with_the_parents_credential(
    sharing_server: KeyholeServer, account: PartnerAccount, shared: tuple[str, str]
) -> None:
    parent, copy = shared
    assert copy != parent
    client = sdk(sharing_server, account.child_a.org_api_key)
    result = client.connections.proxy.execute_proxy(
        id=copy, request=ConnectionProxyCall(method="POST", path="/anything", body={"a": 1})
    )
    assert result.data is not None and result.data.body is not None
    assert result.data.status == 200
    echo = json.loads(result.data.body)
    assert echo["json"] == {"a": 1}
    # Sent upstream (the caller sent no such header), scrubbed from the echo.
    assert echo["headers"][HEADER] == REDACTED
    assert SECRET not in result.data.body


def test_the_child_can_neither_override_the_credential_nor_leave_the_target(
    http: httpx.Client, account: PartnerAccount, shared: tuple[str, str]
) -> None:
    _, copy = shared
    a = account.child_a.bearer
    for name in (HEADER, HEADER.lower(), HEADER.upper()):
        refused = proxy(http, copy, a, method="GET", path="/headers", headers={name: "mine"})
        assert_envelope(refused, 400, "locked_header")
    for path in ("http://evil.example/", "//evil.example/x", "/../../headers"):
        refused = proxy(http, copy, a, method="GET", path=path)
        assert_envelope(refused, 400, "invalid_proxy_request")
    assert _echoed_credential(http, copy, a) == REDACTED


def test_the_child_reads_no_secret_in_any_view(
    sharing_server: KeyholeServer,
    http: httpx.Client,
    account: PartnerAccount,
    shared: tuple[str, str],
    httpbin_url: str,
) -> None:
    parent, copy = shared
    a = account.child_a.bearer
    proxied(http, copy, a, method="GET", path="/get")  # a call to list
    views = {
        path: http.get(path, headers=a)
        for path in (
            f"/api/connections/{copy}",
            "/api/connections",
            f"/api/connections/{copy}/proxy/info",
            f"/api/connections/{copy}/proxy/settings",
            f"/api/connections/{copy}/proxy/calls",
            f"/api/connections/{copy}/shared",
            f"/api/connections/{copy}/parameter_values",
        )
    }
    composio = {"x-api-key": account.child_a.org_api_key}
    views["composio account"] = http.get(f"/api/v3.1/connected_accounts/{copy}", headers=composio)
    views["composio accounts"] = http.get("/api/v3.1/connected_accounts", headers=composio)
    for name, response in views.items():
        assert response.status_code == 200, (name, response.text)
        assert SECRET not in response.text, name

    view = views[f"/api/connections/{copy}"].json()["data"]
    assert view["parent_connection_id"] == parent
    assert view["organization_id"] == account.child_a.organization_id
    assert view["configuration"] == {
        "url": httpbin_url,
        "auth": {"type": "header", "name": HEADER, "value": REDACTED},
    }
    info = views[f"/api/connections/{copy}/proxy/info"].json()["data"]
    assert (info["connectionId"], info["parentConnectionId"]) == (copy, parent)
    assert info["inheritedBase"]["lockedHeaders"] == [{"name": HEADER, "value": REDACTED, "redacted": True}]
    settings = views[f"/api/connections/{copy}/proxy/settings"].json()["data"]
    assert settings == {
        "connectionId": copy,
        "parentConnectionId": parent,
        "backendType": "api",
        "enabled": True,
        "supported": True,
    }
    assert views[f"/api/connections/{copy}/shared"].json()["data"] == []  # a copy has no copies
    # The parent's own views name no parent.
    own = data_of(http.get(f"/api/connections/{parent}/proxy/settings", headers=account.owner.bearer))
    assert own["parentConnectionId"] is None
    # At rest the copy holds no configuration and no secret of its own.
    assert _rows(sharing_server, "SELECT configuration, secrets FROM connections WHERE id = ?", copy) == [
        ("{}", None)
    ]


def test_another_child_and_another_partner_learn_nothing(
    http: httpx.Client, account: PartnerAccount, foreign: PartnerAccount, shared: tuple[str, str]
) -> None:
    parent, copy = shared
    b = account.child_b.bearer
    for connection in (copy, parent):
        prefix = f"/api/connections/{connection}"
        attempts = [
            http.get(prefix, headers=b),
            proxy(http, connection, b, method="GET", path="/get"),
            http.get(f"{prefix}/proxy/info", headers=b),
            http.get(f"{prefix}/proxy/settings", headers=b),
            http.put(f"{prefix}/proxy/settings", json={"enabled": False}, headers=b),
            http.get(f"{prefix}/proxy/calls", headers=b),
            http.get(f"{prefix}/shared", headers=b),
            http.put(prefix, json={"name": "mine", "configuration": {}}, headers=b),
            http.delete(prefix, headers=b),
        ]
        for response in attempts:
            assert_envelope(response, 404, "not_found")
            assert SECRET not in response.text
    owner = account.owner.organization_id
    rival = foreign.partner
    for response in (
        http.get(share_path(owner, parent), headers=rival),
        http.post(
            share_path(owner, parent),
            json={"child_organization_id": foreign.child_a.organization_id},
            headers=rival,
        ),
        http.get(share_path(foreign.owner.organization_id, parent), headers=rival),
        http.post(
            share_path(foreign.owner.organization_id, parent),
            json={"child_organization_id": foreign.child_a.organization_id},
            headers=rival,
        ),
    ):
        assert_envelope(response, 404)
        assert copy not in response.text
    listed = data_of(http.get(share_path(owner, parent), headers=account.partner))
    assert [item["id"] for item in listed] == [copy]
    assert _echoed_credential(http, copy, account.child_a.bearer) == REDACTED


def test_copies_are_listed_for_the_owner_and_the_partner_only(
    sharing_server: KeyholeServer, http: httpx.Client, account: PartnerAccount, httpbin_url: str
) -> None:
    parent = _header_connection(http, account, httpbin_url)
    partner = sdk(sharing_server, account.partner_api_key)
    owner_id = account.owner.organization_id
    first = partner.connections.shared_connections.create_shared_connection(
        owner_id, parent, child_organization_id=account.child_a.organization_id
    )
    assert first.data is not None and first.data.id
    second = share(http, account, parent, account.child_b, name="B's copy")

    owner = sdk(sharing_server, account.owner.user_api_key)
    listed = owner.connections.shared_connections.list_shared_connections(id=parent).data or []
    assert [item.id for item in listed] == [first.data.id, second]
    assert {item.parent_connection_id for item in listed} == {parent}
    assert [item.organization_id for item in listed] == [
        account.child_a.organization_id,
        account.child_b.organization_id,
    ]
    parent_name = data_of(http.get(f"/api/connections/{parent}", headers=account.owner.bearer))["name"]
    assert [item.name for item in listed] == [parent_name, "B's copy"]  # the parent's name by default
    assert all(SECRET not in json.dumps(item.configuration) for item in listed)
    creator = listed[0].created_by
    assert creator is not None and (creator.id, creator.type) == (owner_id, "partner")
    by_org_key = data_of(http.get(f"/api/connections/{parent}/shared", headers=account.owner.basic))
    assert [item["id"] for item in by_org_key] == [first.data.id, second]
    for_partner = partner.connections.shared_connections.list_shared_connections_for_partner(
        org_id=owner_id, connection_id=parent
    )
    assert [item.id for item in for_partner.data or []] == [first.data.id, second]

    # The org_id must be the parent's owner: any other organization, even of the account, is a 404.
    for org_id in (account.child_a.organization_id, account.child_b.organization_id):
        with pytest.raises(NotFoundError):
            partner.connections.shared_connections.list_shared_connections_for_partner(
                org_id=org_id, connection_id=parent
            )
    child = sdk(sharing_server, account.child_a.org_api_key)
    with pytest.raises(NotFoundError):
        child.connections.shared_connections.list_shared_connections(id=parent)
    # Each listing takes its own kind of key.
    with pytest.raises(ForbiddenError):
        partner.connections.shared_connections.list_shared_connections(id=parent)
    with pytest.raises(ForbiddenError):
        owner.connections.shared_connections.list_shared_connections_for_partner(
            org_id=owner_id, connection_id=parent
        )
    refused = http.post(
        share_path(owner_id, parent),
        json={"child_organization_id": account.child_a.organization_id},
        headers=account.owner.bearer,
    )
    assert_envelope(refused, 403, "partner_key_required")


def test_sharing_rules(
    http: httpx.Client, account: PartnerAccount, foreign: PartnerAccount, httpbin_url: str
) -> None:
    parent = _header_connection(http, account, httpbin_url)
    copy = share(http, account, parent, account.child_a)
    owner_id = account.owner.organization_id
    again = http.post(
        share_path(owner_id, parent),
        json={"child_organization_id": account.child_a.organization_id, "name": "twice"},
        headers=account.partner,
    )
    assert assert_envelope(again, 409, "already_shared")["metadata"]["id"] == copy
    # Only the owner organization's connections are shared: not a copy, not a customer's own.
    reshared = http.post(
        share_path(account.child_a.organization_id, copy),
        json={"child_organization_id": account.child_b.organization_id},
        headers=account.partner,
    )
    assert_envelope(reshared, 422, "not_owner_organization")
    to_itself = http.post(
        share_path(owner_id, parent), json={"child_organization_id": owner_id}, headers=account.partner
    )
    assert_envelope(to_itself, 422, "invalid_child_organization")
    to_a_stranger = http.post(
        share_path(owner_id, parent),
        json={"child_organization_id": foreign.child_a.organization_id},
        headers=account.partner,
    )
    assert_envelope(to_a_stranger, 404, "not_found")
    listed = data_of(http.get(share_path(owner_id, parent), headers=account.partner))
    assert [item["id"] for item in listed] == [copy]
    assert listed[0]["name"] != "twice"  # the refused second share changed nothing
    assert data_of(http.get("/api/connections", headers=foreign.child_a.bearer)) == []
    configuration = {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}}
    own = create_connection(http, account.child_a.bearer, "api", configuration)
    before = data_of(http.get("/api/connections", headers=account.child_b.bearer))
    handed_over = http.post(
        share_path(account.child_a.organization_id, own),
        json={"child_organization_id": account.child_b.organization_id},
        headers=account.partner,
    )
    assert_envelope(handed_over, 422, "not_owner_organization")
    assert data_of(http.get("/api/connections", headers=account.child_b.bearer)) == before


def test_rekeying_the_parent_reaches_the_copy_without_touching_it(
    http: httpx.Client, account: PartnerAccount, httpbin_url: str
) -> None:
    def configuration(password: str) -> dict[str, Any]:
        return {"url": httpbin_url, "auth": {"type": "basic", "username": "ada", "password": password}}

    parent = create_connection(http, account.owner.bearer, "api", configuration("pw-old-5xQ"))
    copy = share(http, account, parent, account.child_a)
    a = account.child_a.bearer

    def status(path: str) -> int:
        return int(proxied(http, copy, a, method="GET", path=path)["status"])

    assert (status("/basic-auth/ada/pw-old-5xQ"), status("/basic-auth/ada/pw-new-7yR")) == (200, 401)
    before = data_of(http.get(f"/api/connections/{copy}", headers=a))
    name = data_of(http.get(f"/api/connections/{parent}", headers=account.owner.bearer))["name"]
    rekeyed = http.put(
        f"/api/connections/{parent}",
        json={"name": name, "configuration": configuration("pw-new-7yR"), "validate": False},
        headers=account.owner.bearer,
    )
    assert rekeyed.status_code == 200, rekeyed.text
    # At once, although this server caches targets for an hour: the copy's was evicted with the parent's.
    assert (status("/basic-auth/ada/pw-old-5xQ"), status("/basic-auth/ada/pw-new-7yR")) == (401, 200)
    after = data_of(http.get(f"/api/connections/{copy}", headers=a))
    assert after == before  # the copy itself was not written
    assert "pw-new-7yR" not in json.dumps(after)


def test_disabling_the_parent_refuses_the_copys_calls_at_once(
    http: httpx.Client, account: PartnerAccount, httpbin_url: str
) -> None:
    parent = _header_connection(http, account, httpbin_url)
    copy = share(http, account, parent, account.child_a)
    a = account.child_a.bearer
    assert proxied(http, copy, a, method="GET", path="/get")["status"] == 200
    settings = f"/api/connections/{parent}/proxy/settings"
    assert (
        data_of(http.put(settings, json={"enabled": False}, headers=account.owner.bearer))["enabled"] is False
    )
    assert_envelope(proxy(http, copy, a, method="GET", path="/get"), 403, "proxy_disabled")
    shown = data_of(http.get(f"/api/connections/{copy}/proxy/settings", headers=a))
    assert (shown["enabled"], shown["parentConnectionId"]) == (False, parent)
    assert (
        data_of(http.put(settings, json={"enabled": True}, headers=account.owner.bearer))["enabled"] is True
    )
    assert proxied(http, copy, a, method="GET", path="/get")["status"] == 200


def test_deleting_a_copy_deletes_only_it_and_deleting_the_parent_deletes_every_copy(
    sharing_server: KeyholeServer, http: httpx.Client, account: PartnerAccount, httpbin_url: str
) -> None:
    parent = _header_connection(http, account, httpbin_url)
    copy_a = share(http, account, parent, account.child_a)
    copy_b = share(http, account, parent, account.child_b)
    a, b = account.child_a.bearer, account.child_b.bearer
    assert proxied(http, copy_b, b, method="GET", path="/get")["status"] == 200

    assert http.delete(f"/api/connections/{copy_a}", headers=a).status_code == 204
    assert_envelope(http.get(f"/api/connections/{copy_a}", headers=a), 404)
    assert proxied(http, parent, account.owner.bearer, method="GET", path="/get")["status"] == 200
    assert proxied(http, copy_b, b, method="GET", path="/get")["status"] == 200
    listed = data_of(http.get(share_path(account.owner.organization_id, parent), headers=account.partner))
    assert [item["id"] for item in listed] == [copy_b]

    assert http.delete(f"/api/connections/{parent}", headers=account.owner.bearer).status_code == 204
    assert_envelope(http.get(f"/api/connections/{copy_b}", headers=b), 404, "not_found")
    assert_envelope(proxy(http, copy_b, b, method="GET", path="/get"), 404, "not_found")
    assert copy_b not in [item["id"] for item in data_of(http.get("/api/connections", headers=b))]
    gone = http.get(share_path(account.owner.organization_id, parent), headers=account.partner)
    assert_envelope(gone, 404, "not_found")
    assert (
        _rows(sharing_server, "SELECT id FROM connections WHERE id IN (?, ?, ?)", parent, copy_a, copy_b)
        == []
    )


def test_the_child_cannot_change_what_its_copy_shares(
    http: httpx.Client, account: PartnerAccount, httpbin_url: str
) -> None:
    parent = _header_connection(http, account, httpbin_url)
    copy = share(http, account, parent, account.child_a)
    a = account.child_a.bearer
    shown = data_of(http.get(f"/api/connections/{copy}", headers=a))
    parent_before = data_of(http.get(f"/api/connections/{parent}", headers=account.owner.bearer))
    configuration = shown["configuration"]
    url = f"/api/connections/{copy}"
    attempts = [
        http.put(
            url,
            json={"name": "x", "configuration": {**configuration, "url": "http://127.0.0.1:9/"}},
            headers=a,
        ),
        http.put(
            url,
            json={
                "name": "x",
                "configuration": {**configuration, "auth": {**configuration["auth"], "value": "mine"}},
            },
            headers=a,
        ),
        http.put(url, json={"name": "x", "configuration": {"url": httpbin_url}}, headers=a),
        http.put(url, json={"name": "x", "configuration": configuration, "type": "postgresql"}, headers=a),
        http.put(f"{url}/proxy/settings", json={"enabled": False}, headers=a),
        http.put(f"{url}/proxy/settings", json={"enabled": True}, headers=a),
        http.post(
            "/api/connections/connect/",
            json={"name": "reauthorize", "redirect_url": "https://app.example/done", "connection": copy},
            headers=a,
        ),
    ]
    for response in attempts:
        body = assert_envelope(response, 403, "shared_connection_read_only")
        assert body["metadata"] == {"parent_connection_id": parent}
        assert "parent" in body["message"]
    # A test with the copy's stored credential follows the binding rule: not to another target.
    probe = http.post(
        "/api/connections/test",
        json={"type": "api", "configuration": {"url": "http://127.0.0.1:9/"}, "connection_id": copy},
        headers=a,
    )
    assert_envelope(probe, 422, "secret_required_for_new_target")

    assert data_of(http.get(url, headers=a)) == shown
    assert data_of(http.get(f"/api/connections/{parent}", headers=account.owner.bearer)) == parent_before
    assert data_of(http.get(f"{url}/proxy/settings", headers=a))["enabled"] is True
    assert _echoed_credential(http, copy, a) == REDACTED

    # Its own name and policies are the copy's to change, with the configuration as read, or none.
    renamed = data_of(http.put(url, json={"name": "Our CRM", "configuration": configuration}, headers=a))
    assert (renamed["name"], renamed["parent_connection_id"]) == ("Our CRM", parent)
    emptied = http.put(url, json={"name": "Our CRM 2", "configuration": {}, "policies": []}, headers=a)
    assert data_of(emptied)["configuration"] == configuration
    assert (
        data_of(http.get(f"/api/connections/{parent}", headers=account.owner.bearer))["name"]
        == (parent_before["name"])
    )


def test_copy_calls_count_against_the_parents_connection_limit(
    http: httpx.Client, account: PartnerAccount, httpbin_url: str
) -> None:
    parent = _header_connection(http, account, httpbin_url, proxy={"rate_limit_per_minute": 3})
    copy_a = share(http, account, parent, account.child_a)
    copy_b = share(http, account, parent, account.child_b)
    a = account.child_a.bearer
    info = data_of(http.get(f"/api/connections/{copy_a}/proxy/info", headers=a))
    assert info["requestContract"]["rateLimitPerMinute"] == 3
    for _ in range(3):
        assert proxied(http, copy_a, a, method="GET", path="/get")["status"] == 200
    for connection, headers in (
        (parent, account.owner.bearer),
        (copy_b, account.child_b.bearer),
        (copy_a, a),
    ):
        limited = proxy(http, connection, headers, method="GET", path="/get")
        body = assert_envelope(limited, 429, "connection_rate_limited")
        assert body["metadata"]["limit"] == 3


def test_the_audit_record_of_a_copy_call_names_both_connections(
    sharing_server: KeyholeServer, http: httpx.Client, account: PartnerAccount, httpbin_url: str
) -> None:
    parent = _header_connection(http, account, httpbin_url)
    copy = share(http, account, parent, account.child_a)
    a = account.child_a.bearer
    call_id = proxied(http, copy, a, method="GET", path="/get")["proxyCallId"]
    records = data_of(http.get(f"/api/connections/{copy}/proxy/calls", headers=a))
    assert [(r["proxyCallId"], r["parentConnectionId"], r["outcome"]) for r in records] == [
        (call_id, parent, "ok")
    ]
    stored = _rows(
        sharing_server,
        "SELECT organization_id, connection_id, parent_connection_id FROM proxy_calls WHERE id = ?",
        call_id,
    )
    assert stored == [(account.child_a.organization_id, copy, parent)]
    # The parent's own calls name no parent; the copy's call is the child organization's, not the owner's.
    own_id = proxied(http, parent, account.owner.bearer, method="GET", path="/get")["proxyCallId"]
    own = data_of(http.get(f"/api/connections/{parent}/proxy/calls", headers=account.owner.bearer))
    assert [(r["proxyCallId"], r["parentConnectionId"]) for r in own] == [(own_id, None)]
