"""Fixtures of the Composio dialect suite: an HTTP client per organization and the official clients."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import IN_CI, KeyholeServer, Keys
from side_envs import ensure

from .client_envs import CLIENTS

CLIENT_SCRIPTS = Path(__file__).with_name("clients")
TOKEN = "tok_Composio_9f3Kq2Lw8Zx4"


def envelope(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """A Composio error: the expected status, integer code, string slug, request id echoed."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert type(error["code"]) is int, error
    assert isinstance(error["slug"], str) and error["slug"], error
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["errors"], list) and all(isinstance(item, str) for item in error["errors"])
    assert response.headers.get("x-request-id")
    assert "x-polytomic-version" not in response.headers
    if slug is not None:
        assert error["slug"] == slug, error
    return dict(error)


class Composio:
    """Raw HTTP access to the Composio routes of one server, as one organization."""

    def __init__(self, client: httpx.Client, prefix: str = "/api/v3.1") -> None:
        self.client = client
        self.prefix = prefix

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.client.post(self.prefix + path, json=body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(self.prefix + path, **kwargs)

    def patch(self, path: str, body: Any) -> httpx.Response:
        return self.client.patch(self.prefix + path, json=body)

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(self.prefix + path)

    def auth_config(self, scheme: str = "BEARER_TOKEN", toolkit: str = "api", **credentials: Any) -> str:
        response = self.post(
            "/auth_configs",
            {
                "toolkit": {"slug": toolkit},
                "auth_config": {"type": "use_custom_auth", "authScheme": scheme, "credentials": credentials},
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["auth_config"]["id"])

    def account(
        self,
        base_url: str,
        *,
        user_id: str = "user-1",
        scheme: str = "BEARER_TOKEN",
        val: dict[str, Any] | None = None,
        config_id: str | None = None,
        alias: str | None = None,
    ) -> str:
        config_id = config_id or self.auth_config(scheme)
        state_val = {
            "status": "ACTIVE",
            "base_url": base_url,
            **(val if val is not None else {"token": TOKEN}),
        }
        connection: dict[str, Any] = {"user_id": user_id, "state": {"authScheme": scheme, "val": state_val}}
        if alias is not None:
            connection["alias"] = alias
        response = self.post(
            "/connected_accounts", {"auth_config": {"id": config_id}, "connection": connection}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def proxy(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.post("/tools/execute/proxy", body, **kwargs)

    def ok(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.proxy(body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="session")
def cio_a(server: KeyholeServer, org_a: Keys) -> Iterator[Composio]:
    with httpx.Client(base_url=server.url, headers={"x-api-key": org_a.user_api_key}, timeout=30) as client:
        yield Composio(client)


@pytest.fixture(scope="session")
def cio_b(server: KeyholeServer, org_b: Keys) -> Iterator[Composio]:
    with httpx.Client(base_url=server.url, headers={"x-api-key": org_b.user_api_key}, timeout=30) as client:
        yield Composio(client)


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def client_python(name: str) -> Path:
    """The interpreter of a client's cached environment; building it may take a minute once."""
    try:
        return ensure(CLIENTS[name])
    except (subprocess.SubprocessError, OSError) as exc:
        message = f"could not build the {name} environment: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the official clients are required)")
        pytest.skip(message)


def run_client(name: str, script: str, env: dict[str, str], timeout: float = 300) -> dict[str, Any]:
    python = client_python(name)
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("COMPOSIO_", "KEYHOLE_"))}
    completed = subprocess.run(
        [str(python), str(CLIENT_SCRIPTS / script)],
        env={**clean, **env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result
