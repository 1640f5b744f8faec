"""Helpers of the playground and activity tests: organizations of their own on the console
server (so the counts they check are theirs alone), connections made through the REST API, and
the playground's form posted as a browser posts it."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from conftest import Keys

from .conftest import ConsoleServer
from .support import ConsoleClient, sign_in

SECRET = "sek_console_Wq7Lm2Zp9Xr4Tn6V"  # the upstream credential of every connection made here
_CALL_LINK = re.compile(r'<a href="/console/activity/([0-9a-f-]{36})" id="call-id">')


@dataclass
class Tenant:
    """An organization of its own: its admin user's REST client and console session."""

    keys: Keys
    rest: httpx.Client
    console: ConsoleClient

    @property
    def organization_id(self) -> str:
        return self.keys.organization_id

    def connection(self, url: str, *, proxy: dict[str, Any] | None = None, name: str | None = None) -> str:
        """An ``api`` connection to ``url`` sending ``SECRET`` as a bearer token."""
        configuration: dict[str, Any] = {"url": url, "auth": {"type": "bearer", "token": SECRET}}
        if proxy is not None:
            configuration["proxy"] = proxy
        response = self.rest.post(
            "/api/connections",
            json={
                "name": name or f"api-{uuid.uuid4().hex[:8]}",
                "type": "api",
                "configuration": configuration,
                "validate": False,
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["id"])

    def member_key(self) -> str:
        """The key of a new user of the organization with the member role."""
        created = self.rest.post(
            "/api/organization/users", json={"email": f"m-{uuid.uuid4().hex[:8]}@t.test"}
        )
        assert created.status_code == 200, created.text
        user_id = created.json()["data"]["id"]
        minted = self.rest.post(f"/api/organizations/{self.organization_id}/users/{user_id}/keys", json={})
        assert minted.status_code == 200, minted.text
        return str(minted.json()["data"]["value"])

    def proxy(self, connection_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """A call through the REST proxy: its answer's ``data`` (or the error envelope)."""
        answer: dict[str, Any] = self.rest.post(
            f"/api/connections/{connection_id}/proxy", json={"request": request}
        ).json()
        return answer


@contextmanager
def tenant(server: ConsoleServer) -> Iterator[Tenant]:
    label = uuid.uuid4().hex[:8]
    keys = server.server.bootstrap(f"console-{label}", f"admin@{label}.test")
    with httpx.Client(base_url=server.url, headers=keys.bearer, timeout=60) as rest:
        console = sign_in(server.url, keys.user_api_key)
        try:
            yield Tenant(keys, rest, console)
        finally:
            console.http.close()


def run(console: ConsoleClient, connection_id: str, **fields: str) -> httpx.Response:
    """The playground's Send with ``fields`` over a GET of ``/`` with no query, headers or body."""
    form = {
        "connection": connection_id,
        "method": "GET",
        "path": "/",
        "query": "",
        "headers": "",
        "body_format": "json",
        "body": "",
        "action": "run",
        **fields,
    }
    return console.post("/console/playground", form)


def pre(page: str, element_id: str) -> str:
    """The text of the page's ``<pre id=element_id>``."""
    found = re.search(rf'<pre id="{element_id}"[^>]*>(.*?)</pre>', page, re.DOTALL)
    assert found is not None, f"no <pre id={element_id}>"
    return html.unescape(found.group(1))


def call_id_of(page: str) -> str:
    found = _CALL_LINK.search(page)
    assert found is not None, "the page links no call id"
    return found.group(1)
