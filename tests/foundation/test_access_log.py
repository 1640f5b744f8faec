"""With KEYHOLE_ACCESS_LOG, one JSON line per request says who called what and how it ended;
job attempts log their start and end with their ids. No line carries a key or a secret."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from conftest import KeyholeServer

from .helpers import bootstrap_keys, proxy_call

SECRET = "tok-ACCESS-LOG-SECRET-31c4"


def _lines(server: KeyholeServer, message: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        found = []
        for line in server.logs().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("msg") == message:
                    found.append(entry)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_access_and_job_lines(make_server: Callable[..., KeyholeServer], httpbin_url: str) -> None:
    server = make_server(KEYHOLE_ACCESS_LOG="true")
    keys = bootstrap_keys(server, "log-org", "l@log.test")
    with httpx.Client(base_url=server.url, timeout=30) as api:
        created = api.post(
            "/api/connections",
            json={
                "name": "logged",
                "type": "api",
                "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}},
            },
            headers=keys.bearer,
        )
        connection_id = created.json()["data"]["id"]
        assert proxy_call(api, connection_id, keys.bearer, "/bearer").status_code == 200
        assert api.get(f"/api/connections/{connection_id}", headers=keys.basic).status_code == 200
        missing = "00000000-0000-4000-8000-000000000000"
        assert api.get(f"/api/connections/{missing}", headers=keys.bearer).status_code == 404
        assert api.get("/api/connections", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert (
            api.get("/api/v3/auth_configs/ac_missing", headers={"x-api-key": keys.user_api_key}).status_code
            == 404
        )
        accepted = api.post(
            f"/api/connections/{connection_id}/proxy",
            json={"request": {"method": "GET", "path": "/bytes/64"}, "async": True},
            headers=keys.bearer,
        )
        job_id = accepted.json()["data"]["jobId"]

    requests = _lines(server, "request", 7)
    by_route = {(entry["method"], entry["route"], entry["status"]): entry for entry in requests}
    proxied = by_route[("POST", "/api/connections/{connection_id}/proxy", 200)]
    assert proxied["connection_id"] == connection_id
    assert (proxied["organization_id"], proxied["principal_kind"]) == (keys.organization_id, "user")
    assert proxied["error_key"] is None and isinstance(proxied["ms"], float)
    fetched = by_route[("GET", "/api/connections/{connection_id}", 200)]
    assert fetched["principal_kind"] == "org"
    assert by_route[("GET", "/api/connections/{connection_id}", 404)]["error_key"] == "not_found"
    refused = by_route[("GET", "/api/connections", 401)]
    assert refused["error_key"] == "invalid_api_key" and refused["organization_id"] is None
    composio = by_route[("GET", "/api/v3/auth_configs/{config_id}", 404)]
    assert composio["organization_id"] == keys.organization_id and composio["error_key"]

    started = [entry for entry in _lines(server, "job attempt started", 1) if entry["job_id"] == job_id]
    finished = [entry for entry in _lines(server, "job attempt finished", 1) if entry["job_id"] == job_id]
    assert [(entry["job_type"], entry["attempt"]) for entry in started] == [("connectionproxy", 1)]
    assert [(entry["outcome"], entry["error_key"]) for entry in finished] == [("done", None)]

    for secret in (SECRET, keys.user_api_key, keys.org_api_key):
        assert secret not in server.logs()
