"""Bad input answers 4xx in the Polytomic envelope, never 500; the body form is accepted too."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest
from polytomic import Polytomic
from polytomic.errors import BadRequestError

from conftest import KeyholeServer, Keys

from .support import page_token, run, wait


@pytest.fixture(scope="module")
def http(qserver: KeyholeServer, alice: Keys) -> Any:
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=30) as instance:
        yield instance


def _envelope(response: httpx.Response, status: int, key: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["status"], body["key"]) == (status, key), body
    assert body["message"] and isinstance(body["metadata"], dict)


def test_sql_in_the_body_is_accepted(http: httpx.Client, client: Polytomic, sqlite_conn: str) -> None:
    response = http.post(
        f"/api/connections/{sqlite_conn}/query", json={"query": "SELECT count(*) AS n FROM items"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "created"
    assert wait(client, response.json()["data"]["id"]).data.results == [{"n": 3}]
    same = http.post(f"/api/connections/{sqlite_conn}/query?query=SELECT+1", json={"query": "SELECT 1"})
    assert same.status_code == 200


def test_bad_submissions(http: httpx.Client, sqlite_conn: str, qserver: KeyholeServer, alice: Keys) -> None:
    path = f"/api/connections/{sqlite_conn}/query"
    _envelope(http.post(path, json={}), 400, "query_missing")
    _envelope(http.post(path + "?query=%20%20", json={}), 400, "query_missing")
    _envelope(
        http.post(path, content=b"{nope", headers={"content-type": "application/json"}), 400, "malformed_json"
    )
    _envelope(http.post(path, json=[1]), 400, "invalid_body")
    _envelope(http.post(path, json={"query": 5}), 400, "validation_error")
    _envelope(http.post(path + "?query=SELECT+1", json={"query": "SELECT 2"}), 400, "validation_error")
    _envelope(http.post("/api/connections/not-a-uuid/query?query=SELECT+1", json={}), 404, "not_found")
    _envelope(
        http.post("/api/connections/00000000-0000-0000-0000-000000000000/query?query=SELECT+1", json={}),
        404,
        "not_found",
    )
    api = http.post(
        "/api/connections",
        json={
            "name": "http",
            "type": "api",
            "configuration": {"url": "https://example.com"},
            "validate": False,
        },
    )
    _envelope(
        http.post(f"/api/connections/{api.json()['data']['id']}/query?query=SELECT+1", json={}),
        400,
        "query_not_supported",
    )
    _envelope(http.get("/api/queries/not-a-uuid"), 404, "query_not_found")
    with httpx.Client(base_url=qserver.url) as anonymous:
        assert anonymous.post(path + "?query=SELECT+1", json={}).status_code == 401


def test_garbage_and_forged_page_tokens_are_400(
    client: Polytomic, sqlite_conn: str, http: httpx.Client
) -> None:
    result = run(
        client,
        sqlite_conn,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2500) SELECT x FROM c",
    )
    other = run(
        client,
        sqlite_conn,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2500) SELECT x FROM c",
    )
    token = page_token(result.links.next)
    payload, mac = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[4] = 2  # point at page 2 but keep the MAC of page 1
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=") + "." + mac
    for bad in ("garbage", "%00%ff", forged, token[:-2], "MQ==", page_token(other.links.next) + "x"):
        with pytest.raises(BadRequestError) as caught:
            client.query_runner.get_query(id=result.data.id, page=bad)
        assert caught.value.body.key == "invalid_page_token"
    # a genuine token of another query does not open this one
    with pytest.raises(BadRequestError):
        client.query_runner.get_query(id=result.data.id, page=page_token(other.links.next))
    _envelope(http.get(f"/api/queries/{result.data.id}?page=%E2%82%AC"), 400, "invalid_page_token")
    assert client.query_runner.get_query(id=result.data.id, page=token).data.results[0] == {"x": 1001}


def test_failed_query_envelope_shape(client: Polytomic, sqlite_conn: str) -> None:
    started = time.monotonic()
    result = run(client, sqlite_conn, "SELEC nonsense")
    assert result.data.status == "failed" and "syntax error" in result.data.error
    assert result.data.results is None and result.data.count is None
    assert time.monotonic() - started < 10
