"""Helpers of the organization-wide audit log suite: one organization's calls made and read back."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from hypothesis import strategies as st

from conftest import KeyholeServer, Keys
from foundation.helpers import assert_envelope
from proxy.support import TOKEN, Gateway, gateway

LOG = "/api/proxy/calls"
CONNECTION_FIELDS = {"connectionId", "parentConnectionId"}


@dataclass
class Tenant:
    """One organization of a server: its name, its keys and its admin's Polytomic client."""

    name: str
    keys: Keys
    gw: Gateway

    @property
    def client(self) -> httpx.Client:
        return self.gw.client

    def made(self, connection: str, status: int, **request: Any) -> str:
        """A proxied call answered with ``status``; its ``proxyCallId``."""
        response = self.gw.call(connection, **request)
        assert response.status_code == status, response.text
        body = response.json()
        return str(body["data"]["proxyCallId"] if status == 200 else body["metadata"]["proxyCallId"])


def tenant(server: KeyholeServer, label: str) -> Tenant:
    """A new organization on ``server`` (a name no other test uses), with its bootstrap admin."""
    suffix = uuid.uuid4().hex[:8]
    name = f"audit-{label}-{suffix}"
    keys = server.bootstrap(name, f"admin-{suffix}@{label}.test")
    return Tenant(name, keys, gateway(server.url, keys.bearer))


def httpbin_connection(owner: Tenant, httpbin_url: str, **proxy: Any) -> str:
    """A connection to httpbin whose bearer credential the caller may not set."""
    return owner.gw.create(
        httpbin_url, auth={"type": "bearer", "token": TOKEN}, proxy=dict(proxy) if proxy else None
    )


def page(client: httpx.Client, params: Mapping[str, str] | None = None, **headers: str) -> httpx.Response:
    return client.get(LOG, params=params, headers=headers or None)


def walk(client: httpx.Client, params: Mapping[str, str]) -> list[list[dict[str, Any]]]:
    """Every page of the log, following ``links.next`` from the first."""
    response = client.get(LOG, params=params)
    pages, followed = [], set()
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data", "links"} and set(body["links"]) == {"next"}, body
        pages.append(body["data"])
        next_link = body["links"]["next"]
        if next_link is None:
            return pages
        assert next_link.startswith(LOG + "?"), body["links"]
        assert next_link not in followed, "the log led back to a page it had listed"
        followed.add(next_link)
        response = client.get(next_link)


def records(client: httpx.Client, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every record the log lists for ``params``, newest first."""
    return [record for one_page in walk(client, {"limit": "1000", **(params or {})}) for record in one_page]


def wait_for(client: httpx.Client, call_ids: Iterable[str], timeout: float = 30.0) -> list[dict[str, Any]]:
    """The whole log once it lists every one of ``call_ids`` (the flusher writes asynchronously)."""
    wanted = set(call_ids)
    deadline = time.monotonic() + timeout
    while True:
        listed = records(client)
        missing = wanted - {record["proxyCallId"] for record in listed}
        if not missing:
            return listed
        assert time.monotonic() < deadline, f"calls never listed: {sorted(missing)}"
        time.sleep(0.05)


def moment(record: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(record["createdAt"]).replace("Z", "+00:00"))


def position(record: Mapping[str, Any]) -> tuple[datetime, str]:
    return moment(record), str(record["proxyCallId"])


def status_class(record: Mapping[str, Any]) -> str:
    status = record["status"]
    return "none" if status is None else f"{status // 100}xx"


def model(params: Mapping[str, str]) -> Callable[[Mapping[str, Any]], bool]:
    """What the log's filters select, written independently of the server: a predicate on records."""

    def selected(record: Mapping[str, Any]) -> bool:
        checks: dict[str, Callable[[str], bool]] = {
            "connection_id": lambda value: value in (record["connectionId"], record["parentConnectionId"]),
            "outcome": lambda value: record["outcome"] == value,
            "ok": lambda value: (record["outcome"] == "ok") == (value == "true"),
            "status_class": lambda value: status_class(record) == value.lower(),
            "since": lambda value: moment(record) >= datetime.fromisoformat(value),
            "until": lambda value: moment(record) <= datetime.fromisoformat(value),
        }
        return all(checks[name](value) for name, value in params.items() if name in checks)

    return selected


def member_key(server: KeyholeServer, admin: Tenant) -> str:
    """A user key of a new member (not an admin) of ``admin``'s organization, made through the
    users API by its admin."""
    with httpx.Client(base_url=server.url, headers=admin.keys.bearer, timeout=30) as client:
        created = client.post(
            "/api/organization/users",
            json={"email": f"member-{uuid.uuid4().hex[:8]}@member.test", "role": "member"},
        )
        assert created.status_code == 200, created.text
        user = created.json()["data"]
        assert user["role"] == "member"
        minted = client.post(f"/api/organizations/{admin.keys.organization_id}/users/{user['id']}/keys")
        assert minted.status_code == 200, minted.text
        return str(minted.json()["data"]["value"])


def partner_key(server: KeyholeServer) -> str:
    """A partner key (``keyhole bootstrap --partner``) of a new partner account."""
    suffix = uuid.uuid4().hex[:8]
    result = server.cli(
        "bootstrap", "--org", f"audit-partner-{suffix}", "--user", f"p-{suffix}@partner.test", "--partner"
    )
    return str(json.loads(result.stdout.strip().splitlines()[-1])["partner_api_key"])


def forged(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@st.composite
def mutated(draw: st.DrawFn, cursor: str) -> str:
    """A cursor changed the ways a caller could change one: its characters, or what it encodes."""
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    kind = draw(st.sampled_from(["characters", "payload", "payload text", "anything"]))
    if kind == "anything":
        return draw(st.text(max_size=200))
    if kind == "characters":
        source, alphabet = cursor, st.characters(codec="utf-8")
    else:
        source, alphabet = decoded, st.sampled_from("0123456789+-:.|TZ abcdef\x00\n\U0001f600")
    chars = list(source)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "insert" or not chars or at == len(chars):
            chars.insert(at, draw(alphabet))
        elif action == "replace":
            chars[at] = draw(alphabet)
        else:
            del chars[at]
    text = "".join(chars)
    if kind == "characters":
        return text
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    return encoded.rstrip("=") if kind == "payload" else encoded


def assert_page_or_invalid_cursor(response: httpx.Response, allowed_ids: set[str]) -> None:
    if response.status_code == 200:
        data: list[dict[str, Any]] = response.json()["data"]
        assert {record["proxyCallId"] for record in data} <= allowed_ids
    else:
        assert_envelope(response, 400, "invalid_cursor")
