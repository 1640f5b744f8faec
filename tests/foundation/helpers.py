"""Assertions and small utilities shared by the foundation tests."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from conftest import KeyholeServer, Keys

REDACTED = "[REDACTED]"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def basic(organization_id: str, key: str) -> dict[str, str]:
    token = base64.b64encode(f"{organization_id}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def assert_envelope(
    response: httpx.Response, status: int | None = None, key: str | None = None
) -> dict[str, Any]:
    """A Polytomic error: 4xx, JSON object ``{status, message, key, metadata}``, standard headers."""
    if status is not None:
        assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert type(body["status"]) is int and body["status"] == response.status_code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["key"], str) and body["key"], body
    assert isinstance(body.get("metadata", {}), dict), body
    if key is not None:
        assert body["key"] == key, body
    assert response.headers.get("x-request-id"), response.headers
    assert response.headers.get("x-polytomic-version"), response.headers
    return body


def proxy_call(
    client: httpx.Client, connection_id: str, headers: dict[str, str], path: str, method: str = "GET"
) -> httpx.Response:
    return client.post(
        f"/api/connections/{connection_id}/proxy",
        json={"request": {"method": method, "path": path}},
        headers=headers,
    )


def connection_ids(client: httpx.Client, headers: dict[str, str]) -> list[str]:
    response = client.get("/api/connections", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def db_files(home: Path) -> list[Path]:
    """The SQLite store and its write-ahead log and shared-memory files, where present."""
    return [
        path
        for path in (home / name for name in ("keyhole.db", "keyhole.db-wal", "keyhole.db-shm"))
        if path.exists()
    ]


def leaks(blobs: dict[str, bytes], needles: Iterable[str]) -> list[tuple[str, str]]:
    """Every (blob name, needle) pair where the needle occurs, as UTF-8 or UTF-16 text."""
    found = []
    for needle in needles:
        forms = (needle.encode(), needle.encode("utf-16-le"))
        for name, blob in blobs.items():
            if any(form in blob for form in forms):
                found.append((name, needle))
    return found


def marker(label: str) -> str:
    """A unique secret-looking string that must never show up where it does not belong."""
    return f"{label}-SECRET-{uuid.uuid4().hex[:12]}"


def cli_ok(server: KeyholeServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `keyhole ARGS` in the server's home; a failure shows the command's stderr."""
    result = server.cli(*args, check=False)
    assert result.returncode == 0, (
        f"keyhole {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}"
    )
    return result


def bootstrap_keys(server: KeyholeServer, org: str, user: str) -> Keys:
    result = cli_ok(server, "bootstrap", "--org", org, "--user", user)
    return Keys(**json.loads(result.stdout.strip().splitlines()[-1]))
