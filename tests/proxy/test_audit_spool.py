"""Every answered call is audited, even when its server is killed with SIGKILL right after
answering: the record is in the local spool before the answer, and the next process on the same
home stores it (once)."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import httpx

from conftest import KeyholeServer, server_env


def test_calls_answered_before_a_kill_are_audited(tmp_path: Path, httpbin_url: str) -> None:
    # A flush interval far longer than the test: nothing reaches the store before the kill.
    env = server_env(tmp_path, KEYHOLE_AUDIT_FLUSH_SECONDS="600")
    server = KeyholeServer(tmp_path, env).start()
    keys = server.bootstrap("spool", "s@spool.test")
    with httpx.Client(base_url=server.url, timeout=30) as api:
        created = api.post(
            "/api/connections",
            json={"name": "spooled", "type": "api", "configuration": {"url": httpbin_url}},
            headers=keys.bearer,
        )
        connection_id = created.json()["data"]["id"]
        answered = []
        for index in range(5):
            response = api.post(
                f"/api/connections/{connection_id}/proxy",
                json={"request": {"method": "GET", "path": "/get", "query": {"n": str(index)}}},
                headers=keys.bearer,
            )
            assert response.status_code == 200, response.text
            answered.append(response.json()["data"]["proxyCallId"])
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    server.process = None
    with sqlite3.connect(tmp_path / "keyhole.db") as db:
        assert db.execute("SELECT count(*) FROM proxy_calls").fetchone()[0] == 0
    spooled = list((tmp_path / "audit-spool").glob("*.jsonl"))
    assert spooled and all(oct(path.stat().st_mode)[-3:] == "600" for path in spooled)

    restarted = KeyholeServer(tmp_path, env).start()
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as api:
            calls = api.get(f"/api/connections/{connection_id}/proxy/calls", headers=keys.bearer)
            assert calls.status_code == 200, calls.text
            assert sorted(call["proxyCallId"] for call in calls.json()["data"]) == sorted(answered)
    finally:
        restarted.stop()
    assert not list((tmp_path / "audit-spool").glob("*.jsonl"))  # stored, then deleted
