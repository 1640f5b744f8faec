"""Hostile input on the new endpoints: always a 4xx JSON envelope, never a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest

from conftest import KeyholeServer, Keys

JOB_IDS = [
    "x" * 5000,
    "%00",
    "%FF%FE",
    "..%2F..",
    "' OR 1=1 --",
    "😀",
    "-1",
    str(uuid.uuid4()).upper(),
    " ",
]
JOB_TYPES = ["", "x" * 3000, "%00", "CONNECTIONPROXY", "connectionproxy%20"]


@pytest.fixture(scope="module")
def http(server: KeyholeServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def assert_4xx(response: httpx.Response) -> dict[str, object]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    assert body["status"] == response.status_code and body["key"] and body["message"]
    return body


@pytest.mark.parametrize("job_id", JOB_IDS)
def test_malformed_job_ids(http: httpx.Client, org_a: Keys, job_id: str) -> None:
    body = assert_4xx(http.get(f"/api/jobs/connectionproxy/{job_id}", headers=org_a.bearer))
    assert body["key"] in ("job_not_found", "not_found")


@pytest.mark.parametrize("job_type", JOB_TYPES)
def test_malformed_job_types(http: httpx.Client, org_a: Keys, job_type: str) -> None:
    assert_4xx(http.get(f"/api/jobs/{job_type}/{uuid.uuid4()}", headers=org_a.bearer))


def test_jobs_need_a_key(http: httpx.Client) -> None:
    assert assert_4xx(http.get(f"/api/jobs/connectionproxy/{uuid.uuid4()}"))["status"] == 401
    wrong = {"Authorization": "Bearer kh_u_nope"}
    assert assert_4xx(http.get(f"/api/jobs/connectionproxy/{uuid.uuid4()}", headers=wrong))["status"] == 401


def test_other_methods_on_jobs(http: httpx.Client, org_a: Keys) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = http.request(method, f"/api/jobs/connectionproxy/{uuid.uuid4()}", headers=org_a.bearer)
        assert assert_4xx(response)["key"] == "method_not_allowed"
    assert assert_4xx(http.post(f"/api/blobs/{'a' * 60}"))["key"] == "method_not_allowed"


@pytest.mark.parametrize(
    "body",
    [
        {"request": {"method": "GET", "path": "/"}, "async": 1},
        {"request": {"method": "GET", "path": "/"}, "async": None, "extra": True},
        {"async": True},
        {"request": None, "async": True},
        {"request": {"method": "GET"}, "async": True},
        {"request": {"method": "GET", "path": "relative"}, "async": True},
        {"request": {"method": "GET", "path": "/", "query": {"a": {"b": 1}}}, "async": True},
        {"request": {"method": "GET", "path": "/", "headers": {"X": 1}}, "async": True},
        {"request": {"method": "GET", "path": "/", "query": {"a": 1}, "rawQuery": "b=2"}, "async": True},
        {"request": {"method": "TRACE", "path": "/"}, "async": True},
        [{"async": True}],
        "async",
    ],
)
def test_malformed_async_calls(http: httpx.Client, org_a: Keys, body: object) -> None:
    created = http.post(
        "/api/connections",
        json={
            "name": "bad-async",
            "type": "api",
            "configuration": {"url": "http://127.0.0.1:9"},
            "validate": False,
        },
        headers=org_a.bearer,
    )
    connection = created.json()["data"]["id"]
    assert_4xx(http.post(f"/api/connections/{connection}/proxy", json=body, headers=org_a.bearer))


def test_truncated_json_with_async(http: httpx.Client, org_a: Keys) -> None:
    created = http.post(
        "/api/connections",
        json={
            "name": "bad-async",
            "type": "api",
            "configuration": {"url": "http://127.0.0.1:9"},
            "validate": False,
        },
        headers=org_a.bearer,
    )
    connection = created.json()["data"]["id"]
    raw = b'{"async": true, "request": {"method": "GET", "path": "/"'
    response = http.post(
        f"/api/connections/{connection}/proxy",
        content=raw,
        headers={**org_a.bearer, "Content-Type": "application/json"},
    )
    assert assert_4xx(response)["key"] == "malformed_json"
