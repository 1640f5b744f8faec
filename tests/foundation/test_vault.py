"""The credential vault: unit tests of keyhole.vault, then online master-key rotation end to end."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer, Keys
from keyhole.vault import KeyRing, MasterKey, Vault, VaultError
from keyhole.vault.keyring import KeyRingError, generate_key, parse_keys, write_key_file
from keyhole.vault.rotation import row_aad

from .helpers import bootstrap_keys, cli_ok, db_files, leaks, proxy_call

AAD = row_aad("connections", "11111111-1111-4111-8111-111111111111", "secrets")
OTHER_AAD = row_aad("connections", "22222222-2222-4222-8222-222222222222", "secrets")
PLAINTEXT = b'{"/auth/token": "plain-SECRET-value"}'


def material(key: MasterKey) -> list[str]:
    """Every textual form of a key's material that an error message could leak."""
    return [key.key.hex(), base64.b64encode(key.key).decode(), base64.urlsafe_b64encode(key.key).decode()]


def entry(kid: str, raw: bytes) -> str:
    return f"{kid}:{base64.b64encode(raw).decode()}"


# --- cipher ---------------------------------------------------------------------------------------


def test_roundtrip_and_format() -> None:
    key = generate_key("k1")
    vault = Vault(KeyRing([key]))
    token = vault.encrypt(PLAINTEXT, AAD)
    assert token.startswith("kh1.k1.")
    assert b"plain-SECRET-value" not in token.encode()
    assert Vault.key_id(token) == "k1"
    assert vault.decrypt(token, AAD) == PLAINTEXT
    assert vault.encrypt(PLAINTEXT, AAD) != token  # a fresh nonce every time
    value = {"/auth/token": "t", "/auth/password": "p"}
    assert vault.decrypt_json(vault.encrypt_json(value, AAD), AAD) == value


def test_ciphertext_is_bound_to_its_row() -> None:
    vault = Vault(KeyRing([generate_key("k1")]))
    token = vault.encrypt(PLAINTEXT, AAD)
    with pytest.raises(VaultError):
        vault.decrypt(token, OTHER_AAD)
    with pytest.raises(VaultError):
        vault.decrypt(token, row_aad("connections", "11111111-1111-4111-8111-111111111111", "other"))
    assert vault.decrypt(token, AAD) == PLAINTEXT


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_tampered_ciphertext_fails_without_leaking(position: int) -> None:
    key = generate_key("k1")
    vault = Vault(KeyRing([key]))
    token = vault.encrypt(PLAINTEXT, AAD)
    prefix, body = token[: len("kh1.k1.")], token[len("kh1.k1.") :]
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[position] ^= 0x01
    tampered = prefix + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(VaultError) as caught:
        vault.decrypt(tampered, AAD)
    message = str(caught.value)
    assert "k1" in message
    for form in [*material(key), "plain-SECRET-value"]:
        assert form not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "kh1.k1", "kh2.k1.AAAA", "kh1.k1.!!!not-base64!!!", "kh1.k1.AAAA"],
)
def test_malformed_ciphertexts_raise_vault_error(token: str) -> None:
    vault = Vault(KeyRing([generate_key("k1")]))
    with pytest.raises(VaultError):
        vault.decrypt(token, AAD)


def test_unknown_key_id() -> None:
    old = Vault(KeyRing([generate_key("old")]))
    token = old.encrypt(PLAINTEXT, AAD)
    stranger = generate_key("new")
    with pytest.raises(VaultError) as caught:
        Vault(KeyRing([stranger])).decrypt(token, AAD)
    message = str(caught.value)
    assert "'old'" in message and "not configured" in message
    for form in material(stranger):
        assert form not in message


def test_same_kid_different_material_does_not_open() -> None:
    token = Vault(KeyRing([generate_key("k1")])).encrypt(PLAINTEXT, AAD)
    with pytest.raises(VaultError):
        Vault(KeyRing([generate_key("k1")])).decrypt(token, AAD)


def test_master_key_repr_hides_material() -> None:
    key = generate_key("k1")
    for text in (repr(key), str(key), repr(KeyRing([key])._keys)):
        for form in material(key):
            assert form not in text


# --- key ring -------------------------------------------------------------------------------------


def test_load_generates_a_private_key_file_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "home" / "master.keys"
    with caplog.at_level(logging.WARNING, logger="keyhole.vault.keyring"):
        ring = KeyRing.load(None, key_file)
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert any(
        record.levelno == logging.WARNING and "master key" in record.getMessage() for record in caplog.records
    )
    for form in material(ring.primary):
        assert form not in caplog.text
    assert [key.kid for key in parse_keys(key_file.read_text())] == [ring.primary.kid]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="keyhole.vault.keyring"):
        again = KeyRing.load(None, key_file)
    assert again.primary == ring.primary  # read back, not regenerated
    assert not caplog.records


def test_load_prefers_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "master.keys"
    text = ",".join([entry("env1", b"\x01" * 32), entry("env2", b"\x02" * 32)])
    ring = KeyRing.load(text, key_file)
    assert ring.kids == ["env1", "env2"]
    assert ring.primary.kid == "env1"
    assert ring.file is None
    assert not key_file.exists()
    token = Vault(KeyRing([MasterKey("env2", b"\x02" * 32)])).encrypt(PLAINTEXT, AAD)
    assert Vault(ring).decrypt(token, AAD) == PLAINTEXT  # every key decrypts


def test_parse_keys_accepts_comments_blank_lines_and_newlines() -> None:
    text = f"# rotated 2025\n\n{entry('a', b'a' * 32)}\n  {entry('b', b'b' * 32)} ,\n"
    assert [key.kid for key in parse_keys(text)] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no master key"),
        ("# only a comment", "no master key"),
        ("no-colon-here", "kid:base64key"),
        (f"bad kid:{base64.b64encode(b'x' * 32).decode()}", "kid:base64key"),
        (f"{'k' * 33}:{base64.b64encode(b'x' * 32).decode()}", "kid:base64key"),
        ("k1:%%%not-base64%%%", "not valid base64"),
        (f"k1:{base64.b64encode(b'short-key-material-16').decode()}", "32 bytes"),
        (f"k1:{base64.b64encode(b'y' * 64).decode()}", "32 bytes"),
        (f"k1:{base64.b64encode(b'x' * 32).decode()},k1:{base64.b64encode(b'z' * 32).decode()}", "twice"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(KeyRingError) as caught:
        parse_keys(text)
    message = str(caught.value)
    assert fragment in message
    for part in text.replace(",", ":").split(":")[1::2]:
        if len(part) > 8:
            assert part not in message  # never the key material


def test_rotation_in_a_file_backed_ring(tmp_path: Path) -> None:
    key_file = tmp_path / "master.keys"
    ring = KeyRing.load(None, key_file)
    old = ring.primary
    token = Vault(ring).encrypt(PLAINTEXT, AAD)

    # Another process (another KeyRing on the same file) rotates; this one notices.
    other = KeyRing.load(None, key_file)
    fresh = generate_key("fresh")
    other.add_primary(fresh)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert ring.primary.kid == "fresh"
    assert Vault(ring).decrypt(token, AAD) == PLAINTEXT
    assert Vault(ring).encrypt(PLAINTEXT, AAD).startswith("kh1.fresh.")

    with pytest.raises(KeyRingError):
        other.remove("fresh")  # the primary
    with pytest.raises(KeyRingError):
        other.remove("no-such-kid")
    other.remove(old.kid)
    assert [key.kid for key in parse_keys(key_file.read_text())] == ["fresh"]
    with pytest.raises(VaultError):
        Vault(KeyRing.load(None, key_file)).decrypt(token, AAD)


def test_write_key_file_replaces_atomically(tmp_path: Path) -> None:
    key_file = tmp_path / "master.keys"
    key_file.write_text("stale")
    key_file.chmod(0o644)
    keys = [generate_key("a"), generate_key("b")]
    write_key_file(key_file, keys)
    assert parse_keys(key_file.read_text()) == keys
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (tmp_path / "master.keys.tmp").exists()


# --- online rotation through the server and the CLI -------------------------------------------------


class ProxyLoop(threading.Thread):
    """Proxy calls in a loop until stopped; every outcome is recorded."""

    def __init__(self, url: str, headers: dict[str, str], targets: list[tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.targets = url, headers, targets
        self.outcomes: list[tuple[int, Any]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                while not self.stop.is_set():
                    connection_id, path = self.targets[len(self.outcomes) % len(self.targets)]
                    response = proxy_call(client, connection_id, self.headers, path)
                    data = response.json().get("data") if response.status_code == 200 else response.text
                    self.outcomes.append((response.status_code, data))
        except BaseException as exc:
            self.error = exc

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while len(self.outcomes) < count and not deadline.is_set() and self.is_alive():
                deadline.wait(0.02)
        finally:
            timer.cancel()
        assert len(self.outcomes) >= count, (len(self.outcomes), self.error)


def master_kids(home: Path) -> list[str]:
    return [key.kid for key in parse_keys((home / "master.keys").read_text())]


def stored_ciphertexts(home: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{home / 'keyhole.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, secrets FROM connections WHERE secrets IS NOT NULL").fetchall()
    return dict(rows)


def create(api: httpx.Client, keys: Keys, name: str, configuration: dict[str, Any]) -> str:
    response = api.post(
        "/api/connections",
        json={"name": name, "type": "api", "configuration": configuration},
        headers=keys.bearer,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "healthy"
    connection_id: str = response.json()["data"]["id"]
    return connection_id


def test_online_master_key_rotation(make_server: Callable[..., KeyholeServer], httpbin_url: str) -> None:
    instance = make_server()
    keys = bootstrap_keys(instance, "vault-org", "vera@v.test")
    secrets = {
        "bearer": "tok-ROTATE-SECRET-1",
        "header": "hdr-ROTATE-SECRET-2",
        "basic": "pw-ROTATE-SECRET-3",
        "query": "qry-ROTATE-SECRET-4",
        "late": "tok-ROTATE-SECRET-5",
    }
    (old_kid,) = master_kids(instance.home)
    assert stat.S_IMODE((instance.home / "master.keys").stat().st_mode) == 0o600

    with httpx.Client(base_url=instance.url, timeout=30) as api:
        bearer = create(
            api, keys, "bearer", {"url": httpbin_url, "auth": {"type": "bearer", "token": secrets["bearer"]}}
        )
        header = create(
            api,
            keys,
            "header",
            {"url": httpbin_url, "auth": {"type": "header", "name": "X-Api-Key", "value": secrets["header"]}},
        )
        create(
            api,
            keys,
            "basic",
            {"url": httpbin_url, "auth": {"type": "basic", "username": "u", "password": secrets["basic"]}},
        )
        create(
            api,
            keys,
            "query",
            {"url": httpbin_url, "auth": {"type": "query", "name": "k", "value": secrets["query"]}},
        )
        before = stored_ciphertexts(instance.home)
        assert len(before) == 4
        assert all(token.startswith(f"kh1.{old_kid}.") for token in before.values())

        loop = ProxyLoop(instance.url, keys.bearer, [(bearer, "/bearer"), (header, "/headers")])
        loop.start()
        try:
            loop.wait_for(20)
            rotated = cli_ok(instance, "keys", "rotate-master")
            during = len(loop.outcomes)
            loop.wait_for(max(300, during + 50))
        finally:
            loop.stop.set()
            loop.join(timeout=60)
        assert loop.error is None, loop.error
        report = json.loads(rotated.stdout)
        new_kid = report["primary"]
        assert new_kid != old_kid
        assert report["reencrypted"] == 4
        assert report["remaining_under_old_keys"] == 0
        assert report["old_keys"] == [old_kid]
        assert master_kids(instance.home) == [new_kid, old_kid]

        failures = [outcome for outcome in loop.outcomes if outcome[0] != 200 or outcome[1]["status"] != 200]
        assert failures == [], failures[:5]
        assert len(loop.outcomes) >= 300

        # The running server encrypts new secrets under the new key, read from the key file.
        create(api, keys, "late", {"url": httpbin_url, "auth": {"type": "bearer", "token": secrets["late"]}})
        after = stored_ciphertexts(instance.home)
        assert len(after) == 5
        assert all(token.startswith(f"kh1.{new_kid}.") for token in after.values()), after
        assert all(after[row] != before[row] for row in before)

        primary_removal = instance.cli("keys", "remove-master", new_kid, check=False)
        assert primary_removal.returncode != 0
        removed = json.loads(cli_ok(instance, "keys", "remove-master", old_kid).stdout)
        assert removed == {"removed": old_kid, "primary": new_kid}
        assert master_kids(instance.home) == [new_kid]
        assert stat.S_IMODE((instance.home / "master.keys").stat().st_mode) == 0o600

    instance.stop()
    instance.start()
    with httpx.Client(base_url=instance.url, timeout=30) as api:
        response = proxy_call(api, bearer, keys.bearer, "/bearer")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] == 200
        assert json.loads(response.json()["data"]["body"])["authenticated"] is True
        fetched = api.get(f"/api/connections/{header}", headers=keys.bearer)
        assert fetched.json()["data"]["configuration"]["auth"]["value"] == "[REDACTED]"
    instance.stop()

    needles = [*secrets.values(), keys.user_api_key, keys.org_api_key]
    blobs = {path.name: path.read_bytes() for path in db_files(instance.home)}
    assert "keyhole.db" in blobs
    assert leaks(blobs, needles) == []
    assert leaks({"server.log": instance.logs().encode()}, needles) == []


# Secrets the other foundation tests give the shared server (most run before this module).
SHARED_SERVER_SECRETS = (
    "tok-SECRET-1",
    "tok-SECRET-2",
    "pw-SECRET",
    "tok-BADINPUT-SECRET-4b1d",
    "MARK-SECRET-7f3a9c",
    "tok-ISOLATION-SECRET-91c2",
)


def test_shared_server_logs_and_store_hold_no_secret(server: KeyholeServer, org_a: Keys, org_b: Keys) -> None:
    needles = [
        *SHARED_SERVER_SECRETS,
        org_a.user_api_key,
        org_a.org_api_key,
        org_b.user_api_key,
        org_b.org_api_key,
    ]
    blobs = {path.name: path.read_bytes() for path in db_files(server.home)}
    blobs["server.log"] = server.logs().encode()
    assert leaks(blobs, needles) == []
