"""Auth-config credentials live only encrypted, and key rotation re-encrypts them online."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx

from conftest import KeyholeServer

from .conftest import Composio, envelope

SECRET = "cs-AUTHCONFIG-SECRET-41c9"
KEY = "k-ACCOUNT-SECRET-77d2"


def _ciphertexts(home: Path) -> list[str]:
    with sqlite3.connect(f"file:{home / 'keyhole.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT credentials FROM auth_configs WHERE credentials IS NOT NULL").fetchall()
    return [row[0] for row in rows]


def _database_bytes(home: Path) -> bytes:
    return b"".join(path.read_bytes() for path in home.glob("keyhole.db*"))


def test_auth_config_credentials_are_encrypted_and_rotated(
    make_server: Callable[..., KeyholeServer], httpbin_url: str
) -> None:
    instance = make_server()
    keys = instance.bootstrap("vault-org", "v@v.test")
    with httpx.Client(base_url=instance.url, headers={"x-api-key": keys.user_api_key}, timeout=30) as client:
        cio = Composio(client)
        config = cio.auth_config("API_KEY", client_secret=SECRET, api_key_header="X-Token")
        shown = cio.get(f"/auth_configs/{config}").json()["credentials"]
        assert shown == {"client_secret": "[REDACTED]", "api_key_header": "X-Token"}
        account = cio.account(httpbin_url, scheme="API_KEY", config_id=config, val={"api_key": KEY})

        assert SECRET.encode() not in _database_bytes(instance.home)
        assert KEY.encode() not in _database_bytes(instance.home)
        before = _ciphertexts(instance.home)
        old_kid = before[0].split(".")[1]

        rotated = instance.cli("keys", "rotate-master", check=False)
        assert rotated.returncode == 0, rotated.stderr[-4000:]
        report = json.loads(rotated.stdout)
        assert report["remaining_under_old_keys"] == 0
        after = _ciphertexts(instance.home)
        assert all(token.startswith(f"kh1.{report['primary']}.") for token in after)
        assert report["primary"] != old_kid and after != before

        # Still readable, and the defaults it carries still apply to new accounts.
        assert cio.get(f"/auth_configs/{config}").json()["credentials"]["client_secret"] == "[REDACTED]"
        echoed = cio.ok({"endpoint": "/headers", "method": "GET", "connected_account_id": account})
        assert echoed["data"]["headers"]["X-Token"] == "[REDACTED]"
        updated = cio.patch(
            f"/auth_configs/{config}", {"type": "custom", "credentials": {"client_secret": None}}
        )
        assert updated.status_code == 200 and "client_secret" not in updated.json()["credentials"]
        envelope(cio.patch(f"/auth_configs/{config}", {"type": "custom", "credentials": "x"}), 400)
