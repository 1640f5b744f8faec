"""Liveness, readiness and metrics: unauthenticated, cheap, and honest about the store."""

from __future__ import annotations

import httpx

from conftest import Keys

from .helpers import proxy_call


def test_healthz(api: httpx.Client) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}
    assert response.headers.get("x-request-id")


def test_readyz_reports_a_reachable_store(api: httpx.Client) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "store": "reachable"}


def test_request_id_is_echoed_when_sane(api: httpx.Client) -> None:
    assert (
        api.get("/healthz", headers={"x-request-id": "trace-123.abc"}).headers["x-request-id"]
        == "trace-123.abc"
    )
    hostile = api.get("/healthz", headers={"x-request-id": "bad id<script>"})
    assert hostile.headers["x-request-id"] != "bad id<script>"
    assert hostile.headers["x-request-id"]


def test_metrics_is_prometheus_text(api: httpx.Client, org_a: Keys, httpbin_url: str) -> None:
    # One proxy call first, so that the proxy's own series exist.
    created = api.post(
        "/api/connections",
        json={"name": "metrics probe", "type": "api", "configuration": {"url": httpbin_url}},
        headers=org_a.bearer,
    )
    assert created.status_code == 200, created.text
    connection_id = created.json()["data"]["id"]
    try:
        assert proxy_call(api, connection_id, org_a.bearer, "/get").json()["data"]["status"] == 200
    finally:
        api.delete(f"/api/connections/{connection_id}", headers=org_a.bearer)

    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# HELP" in text and "# TYPE" in text
    calls = [line for line in text.splitlines() if line.startswith("keyhole_proxy_calls_total{")]
    assert any('dialect="polytomic"' in line for line in calls), calls
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_and_labels, _, value = line.rpartition(" ")
            assert name_and_labels, line
            float(value)
