"""`keyhole doctor` against a healthy deployment and against broken ones: each problem is found,
named in plain words with what to do, and makes the command exit 1."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import PYTHON, KeyholeServer, require_service, server_env


def doctor(home: Path, **env: str) -> tuple[int, list[dict[str, Any]]]:
    result = subprocess.run(
        [PYTHON, "-m", "keyhole.cli", "doctor", "--format", "json"],
        env=server_env(home, **env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return result.returncode, findings


def problems(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {finding["check"]: finding for finding in findings if finding["status"] == "problem"}


def test_healthy_embedded_deployment(make_server: Callable[..., KeyholeServer]) -> None:
    server = make_server()
    code, findings = doctor(server.home)
    assert code == 0, findings
    assert {finding["status"] for finding in findings} == {"ok"}, findings
    checks = {finding["check"] for finding in findings}
    assert {
        "store",
        "migrations",
        "master keys",
        "workers",
        "servers",
        "clocks",
        "redis",
        "blob store",
    } <= checks
    assert not list((server.home / "blobs").glob("doctor/*"))  # the probe was removed

    table = subprocess.run(
        [PYTHON, "-m", "keyhole.cli", "doctor"],
        env=server.env,
        cwd=server.home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert table.returncode == 0
    assert all(line.startswith("ok ") for line in table.stdout.splitlines()), table.stdout


def test_broken_embedded_deployment(make_server: Callable[..., KeyholeServer]) -> None:
    server = make_server()
    server.stop()  # nobody runs jobs now

    code, findings = doctor(server.home, KEYHOLE_REDIS_URL="redis://127.0.0.1:9/0")
    assert code == 1
    found = problems(findings)
    assert "keyhole serve" in found["workers"]["fix"]
    assert "KEYHOLE_REDIS_URL" in found["redis"]["fix"]
    assert "master keys" not in found

    foreign = f"test:{base64.b64encode(os.urandom(32)).decode()}"
    code, findings = doctor(server.home, KEYHOLE_MASTER_KEYS=foreign)
    assert code == 1
    assert "KEYHOLE_MASTER_KEYS" in problems(findings)["master keys"]["fix"]
    assert "none of the keys this store is encrypted under" in problems(findings)["master keys"]["detail"]

    (server.home / "master.keys").unlink()
    code, findings = doctor(server.home)
    assert "the store holds encrypted data" in problems(findings)["master keys"]["detail"]
    assert not (server.home / "master.keys").exists()  # the doctor generated nothing


def test_a_skewed_clock_is_named(make_server: Callable[..., KeyholeServer]) -> None:
    server = make_server()
    # A process on a host whose clock runs 30 s ahead (a fault one machine cannot produce for
    # real): its heartbeat row as that process would have written it.
    ahead = datetime.now(UTC) + timedelta(seconds=30)
    with sqlite3.connect(server.home / "keyhole.db") as db:
        db.execute(
            "INSERT INTO processes (id, role, host, pid, version, queues, started_at, reported_at, seen_at)"
            " VALUES ('skewed', 'worker', 'far-host', 4242, '0.1.0', '[]', ?, ?, CURRENT_TIMESTAMP)",
            (ahead.strftime("%Y-%m-%d %H:%M:%S.%f"), ahead.strftime("%Y-%m-%d %H:%M:%S.%f")),
        )
    code, findings = doctor(server.home)
    assert code == 1
    clocks = problems(findings)["clocks"]
    assert "far-host pid 4242" in clocks["detail"] and "NTP" in clocks["fix"]


@pytest.mark.postgres
def test_distributed_deployment_without_a_worker(
    database: str, make_server: Callable[..., KeyholeServer], tmp_path: Path
) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    env = {
        "KEYHOLE_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
        "KEYHOLE_JOB_ENGINE": "procrastinate",
        "KEYHOLE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "KEYHOLE_MASTER_KEYS": f"test:{base64.b64encode(os.urandom(32)).decode()}",
    }
    server = make_server(**env)
    code, findings = doctor(server.home, **env)
    assert code == 1
    found = problems(findings)
    assert set(found) == {"workers"}, found
    assert "keyhole worker" in found["workers"]["fix"]
    assert {f["check"]: f["status"] for f in findings if f["check"] in ("redis", "servers", "clocks")} == {
        "redis": "ok",
        "servers": "ok",
        "clocks": "ok",
    }

    worker = subprocess.Popen(
        [PYTHON, "-m", "keyhole.cli", "worker"],
        env=server_env(tmp_path, **env),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while True:
            code, findings = doctor(server.home, **env)
            if code == 0 or datetime.now(UTC) > deadline:
                break
        assert code == 0, problems(findings)
    finally:
        worker.terminate()
        worker.wait(30)


def test_a_failure_without_a_message_is_still_named() -> None:
    from sqlalchemy.exc import OperationalError

    from keyhole.errors import describe_failure

    assert describe_failure(TimeoutError()) == "TimeoutError"
    wrapped = OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))
    assert describe_failure(wrapped) == "ConnectionRefusedError: [Errno 111] Connection refused"
