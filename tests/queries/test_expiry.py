"""Results expire: a short TTL, the periodic purge on the job system, then 410 with a message."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from polytomic.core.api_error import ApiError

from .support import run, sdk, walk


def test_expired_results_answer_410_and_their_pages_are_deleted(make_server: Callable[..., Any]) -> None:
    server = make_server(
        KEYHOLE_QUERY_RESULT_TTL_SECONDS="3",
        KEYHOLE_PURGE_INTERVAL_SECONDS="0.5",
        KEYHOLE_QUERY_PAGE_ROWS="10",
    )
    keys = server.bootstrap("ttl-org", "ttl@ttl.test")
    with sqlite3.connect(server.home / "sql" / "ttl.sqlite") as connection:
        connection.execute("CREATE TABLE t (n INTEGER)")
        connection.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(25)])
    client = sdk(server, keys.user_api_key)
    connection_id = client.connections.create(
        name="ttl", type="sqlite", configuration={"path": "ttl.sqlite"}
    ).data.id
    result = run(client, connection_id, "SELECT n FROM t ORDER BY n")
    assert walk(client, result.data.id).count == 25
    pages = server.home / "blobs" / "queries" / result.data.id
    assert len(list(pages.rglob("*.json"))) == 3
    expires = result.data.expires
    time.sleep(3.2)
    with pytest.raises(ApiError) as caught:
        client.query_runner.get_query(id=result.data.id)
    assert caught.value.status_code == 410
    assert caught.value.body["key"] == "query_expired"
    assert "expired" in caught.value.body["message"] and "run the query again" in caught.value.body["message"]
    assert caught.value.body["metadata"]["expires"] == expires
    with httpx.Client(base_url=server.url, headers=keys.bearer) as http:
        assert http.delete(f"/api/queries/{result.data.id}").status_code == 410
    deadline = time.monotonic() + 10
    while list(pages.rglob("*.json")):
        assert time.monotonic() < deadline, "the purge never deleted the pages"
        time.sleep(0.2)
