"""An async proxy job reads its upstream through the same pipeline as a synchronous call, so an
OAuth2 access token the upstream rejects with 401 is refreshed once and the call retried once."""

from __future__ import annotations

import time
from typing import Any

import httpx

from conftest import KeyholeServer, Keys

from .conftest import AuthServer
from .helpers import connected, proxy


def _async_call(server: KeyholeServer, keys: Keys, connection_id: str) -> dict[str, Any]:
    """Submit ``GET /api/me`` as an async call and wait for its job to end; returns the job."""
    submitted = httpx.post(
        f"{server.url}/api/connections/{connection_id}/proxy",
        json={"request": {"method": "GET", "path": "/api/me"}, "async": True},
        headers=keys.bearer,
        timeout=60,
    )
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["data"]["jobId"]
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = httpx.get(
            f"{server.url}/api/jobs/connectionproxy/{job_id}", headers=keys.bearer, timeout=30
        ).json()["data"]
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_an_async_call_refreshes_once_on_401_and_retries_once(make_server, authserver: AuthServer) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    keys = server.bootstrap("org-oauth-async", "ada@oauth.test")
    connection_id = connected(server.url, keys, authserver)
    assert proxy(server.url, keys, connection_id).json()["data"]["status"] == 200

    authserver.revoke(access=True)  # the cached token still looks valid for an hour
    refreshes, unauthorized = authserver.count("token:refresh_token"), authserver.count("resource:401")
    job = _async_call(server, keys, connection_id)
    assert job["status"] == "done", job
    assert job["result"]["status"] == 200
    assert authserver.count("token:refresh_token") == refreshes + 1
    assert authserver.count("resource:401") == unauthorized + 1
    body = httpx.get(job["result"]["bodyDownloadUrl"], timeout=30).content
    assert len(body) == job["result"]["contentLength"] > 0

    # A resource that refuses every token: one refresh, one retry, then the 401 is the answer.
    authserver.configure(resource_always_401=True)
    refreshes, resource = authserver.count("token:refresh_token"), authserver.count("resource")
    job = _async_call(server, keys, connection_id)
    assert (job["status"], job["result"]["status"]) == ("done", 401)
    assert authserver.count("token:refresh_token") == refreshes + 1
    assert authserver.count("resource") == resource + 2
