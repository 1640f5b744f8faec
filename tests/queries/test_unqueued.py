"""A query whose submit was cut off between its row and its job (the process killed in between)
does not stay `created` forever: the purge fails it, saying nothing ran."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from conftest import KeyholeServer


def test_a_query_without_its_job_is_failed(make_server: Callable[..., KeyholeServer], tmp_path: Path) -> None:
    sql_root = tmp_path / "sql"
    sql_root.mkdir()
    with sqlite3.connect(sql_root / "one.sqlite") as db:
        db.execute("CREATE TABLE t (x INTEGER)")
    server = make_server(KEYHOLE_SQL_FILE_ROOT=str(sql_root), KEYHOLE_PURGE_INTERVAL_SECONDS="1")
    keys = server.bootstrap("unqueued", "u@unqueued.test")
    with httpx.Client(base_url=server.url, headers=keys.bearer, timeout=30) as api:
        created = api.post(
            "/api/connections",
            json={"name": "lite", "type": "sqlite", "configuration": {"path": "one.sqlite"}},
        )
        assert created.status_code == 200, created.text
        submitted = api.post(
            f"/api/connections/{created.json()['data']['id']}/query", json={"query": "SELECT 1"}
        )
        assert submitted.status_code == 200, submitted.text
        done = submitted.json()["data"]["id"]
        deadline = time.monotonic() + 30
        while api.get(f"/api/queries/{done}").json()["data"]["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)

        # The row as a process killed after writing it, before its job, left it.
        orphan = str(uuid.uuid4())
        with sqlite3.connect(server.home / "keyhole.db") as db:
            columns = [row[1] for row in db.execute("PRAGMA table_info(queries)")]
            chosen = {
                "id": f"'{orphan}'",
                "job_id": f"'{uuid.uuid4()}'",
                "status": "'created'",
                "error": "NULL",
                "error_key": "NULL",
                "attempt": "0",
                "created_at": "datetime('now', '-5 minutes')",
                "started_at": "NULL",
                "finished_at": "NULL",
            }
            select = ", ".join(chosen.get(column, column) for column in columns)
            db.execute(
                f"INSERT INTO queries ({', '.join(columns)}) SELECT {select} FROM queries WHERE id = ?",
                (done,),
            )

        deadline = time.monotonic() + 30
        while (data := api.get(f"/api/queries/{orphan}").json()["data"])["status"] == "created":
            assert time.monotonic() < deadline, "the unqueued query stayed created"
            time.sleep(0.2)
        assert data["status"] == "failed"
        assert "before it was queued; nothing ran" in data["error"]
        assert (
            api.get(f"/api/queries/{done}").json()["data"]["status"] == "done"
        )  # a queued one is left alone
