"""The partner workflow on a PostgreSQL store, where column widths are enforced: organization and
partner principals (``org:<id>``, ``partner:<id>``) fit the columns that record who acted, a share
succeeds, and a customer's organization key calls through the copy and reads its audit log."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer, fresh_postgres_database

from .support import bootstrap_partner

pytestmark = pytest.mark.postgres
SECRET = "pg-partner-SECRET-77"


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_postgres_database("keyhole_partners") as name:
        yield name


def _data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _org_key_headers(server: KeyholeServer, organization_id: str) -> dict[str, str]:
    minted = server.cli("keys", "create", "--organization", organization_id)
    key = httpx.Response(200, content=minted.stdout.strip().splitlines()[-1]).json()["api_key"]
    return {"Authorization": "Basic " + base64.b64encode(f"{organization_id}:{key}".encode()).decode()}


def test_partner_workflow_on_postgres(
    database: str, make_server: Callable[..., KeyholeServer], httpbin_url: str
) -> None:
    server = make_server(KEYHOLE_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
    partner = bootstrap_partner(server, "pg partner", "owner@pg.test")
    with httpx.Client(base_url=server.url, timeout=30) as api:
        child = _data(api.post("/api/organizations", json={"name": "pg customer"}, headers=partner.bearer))
        owner_org_key = partner.keys.basic  # an organization principal creates the parent
        parent = _data(
            api.post(
                "/api/connections",
                json={
                    "name": "pg parent",
                    "type": "api",
                    "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}},
                },
                headers=owner_org_key,
            )
        )
        copy = _data(
            api.post(
                f"/api/organizations/{partner.organization_id}/connections/{parent['id']}/shared",
                json={"child_organization_id": child["id"]},
                headers=partner.bearer,
            )
        )
        customer = _org_key_headers(server, child["id"])
        call = _data(
            api.post(
                f"/api/connections/{copy['id']}/proxy",
                json={"request": {"method": "GET", "path": "/bearer"}},
                headers=customer,
            )
        )
        assert call["status"] == 200 and SECRET not in str(call)
        renamed = api.put(
            f"/api/connections/{copy['id']}", json={"name": "renamed", "configuration": {}}, headers=customer
        )
        assert renamed.status_code == 200, renamed.text
        deadline = time.monotonic() + 30
        while True:
            log = api.get("/api/proxy/calls", headers=customer)
            assert log.status_code == 200, log.text
            records = log.json()["data"]
            if records:
                break
            assert time.monotonic() < deadline, "the copy's call never reached the audit log"
            time.sleep(0.1)
        [record] = records
        assert (record["proxyCallId"], record["connectionId"], record["parentConnectionId"]) == (
            call["proxyCallId"],
            copy["id"],
            parent["id"],
        )
