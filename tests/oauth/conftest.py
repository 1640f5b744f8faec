"""The loopback OAuth2 authorization server (``authserver.py``) and helpers to drive it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PYTHON, free_port, stop_process, wait_for

HERE = Path(__file__).resolve().parent
CLIENT_ID = "keyhole-test-client"
CLIENT_SECRET = "s3cret-client-secret-value"


@dataclass
class AuthServer:
    url: str

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(self.url + "/admin/stats", timeout=10).json()["counts"])

    def count(self, name: str) -> int:
        return self.stats().get(name, 0)

    def configure(self, **values: Any) -> None:
        httpx.post(self.url + "/admin/config", json=values, timeout=10).raise_for_status()

    def revoke(self, *, refresh: bool = False, access: bool = False) -> None:
        httpx.post(self.url + "/admin/revoke", json={"refresh": refresh, "access": access}, timeout=10)

    def auth(self, grant: str = "authorization_code") -> dict[str, Any]:
        auth: dict[str, Any] = {
            "type": "oauth2",
            "grant": grant,
            "token_url": self.url + "/token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["read", "write"],
        }
        if grant == "authorization_code":
            auth["authorization_url"] = self.url + "/authorize"
        return auth


@pytest.fixture
def authserver() -> Iterator[AuthServer]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, str(HERE / "authserver.py"), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/admin/stats", process)
    yield AuthServer(url)
    stop_process(process)


def follow_connect(redirect_url: str) -> httpx.Response:
    """Play the browser: the provider's consent page redirects to Keyhole's callback, whose answer
    (a 302 to the caller's URL, or a 400) is returned without following it further."""
    consent = httpx.get(redirect_url, follow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    return httpx.get(consent.headers["location"], follow_redirects=False, timeout=30)


def callback_url_of(redirect_url: str) -> str:
    consent = httpx.get(redirect_url, follow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    return str(consent.headers["location"])
