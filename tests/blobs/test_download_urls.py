"""Download URLs of the local blob store: a signed, expiring capability and nothing more."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import KeyholeServer, Keys, server_env
from jobs.support import TOKEN, AsyncApi, Upstream, api

INFO = b"keyhole/blob-download-url/v1"


@pytest.fixture(scope="module")
def blob_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("blobs")
    server = KeyholeServer(home, server_env(home)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def owner(blob_server: KeyholeServer) -> Keys:
    return blob_server.bootstrap("blobs", "b@blobs.test")


@pytest.fixture(scope="module")
def client(blob_server: KeyholeServer, owner: Keys) -> Iterator[AsyncApi]:
    instance = api(blob_server.url, owner.bearer)
    yield instance
    instance.client.close()


def finished_job(client: AsyncApi, upstream: Upstream, size: int = 5000) -> dict[str, Any]:
    connection = client.connection(upstream.url)
    job = client.wait(client.accepted(connection, "/text", query={"size": size})["jobId"])
    assert job["status"] == "done", job
    return job


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def master_keys(home: Path) -> dict[str, bytes]:
    entries = [line.split(":", 1) for line in (home / "master.keys").read_text().split() if line]
    return {kid: base64.b64decode(material) for kid, material in entries}


def sign(key: bytes, payload: bytes) -> str:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(key)
    return f"{b64(payload)}.{b64(hmac.new(derived, payload, hashlib.sha256).digest())}"


def assert_error(response: httpx.Response, status: int, key: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert (body["status"], body["key"]) == (status, key), body
    assert body["message"]


def test_the_url_is_the_only_credential(
    blob_server: KeyholeServer, owner: Keys, client: AsyncApi, blob_upstream: Upstream
) -> None:
    job = finished_job(client, blob_upstream)
    url = job["result"]["bodyDownloadUrl"]
    token = url.rsplit("/", 1)[1]
    secrets: list[str | bytes] = [owner.user_api_key, owner.org_api_key, TOKEN]
    for secret in [*secrets, *master_keys(blob_server.home).values()]:
        text = secret if isinstance(secret, str) else base64.b64encode(secret).decode()
        assert text not in url
    version, kid, blob_id, expiry = unb64(token.split(".")[0]).decode().split(":")
    assert (version, kid) == ("1", next(iter(master_keys(blob_server.home))))
    uuid.UUID(blob_id)
    assert int(expiry) - time.time() <= 900
    response = httpx.get(url)  # no API key at all
    assert (response.status_code, response.content) == (200, b"x" * 5000)
    assert response.headers["cache-control"] == "private, no-store"
    assert "sandbox" in response.headers["content-security-policy"]


def test_altered_or_forged_urls_are_refused(
    blob_server: KeyholeServer, client: AsyncApi, blob_upstream: Upstream
) -> None:
    url = finished_job(client, blob_upstream)["result"]["bodyDownloadUrl"]
    base, token = url.rsplit("/", 1)
    payload_text, mac = token.split(".")
    payload = unb64(payload_text)
    version, kid, blob_id, expiry = payload.decode().split(":")
    longer = f"{version}:{kid}:{blob_id}:{int(expiry) + 86400}".encode()
    forged = [
        f"{payload_text}.{mac[:-2]}{'AB' if mac[-2:] != 'AB' else 'CD'}",  # altered signature
        f"{b64(longer)}.{mac}",  # a later expiry under the old signature
        f"{b64(payload.replace(blob_id.encode(), str(uuid.uuid4()).encode()))}.{mac}",  # another blob
        sign(b"\x01" * 32, payload),  # signed with a key this server does not have
        sign(b"\x01" * 32, f"1:nokid:{blob_id}:{expiry}".encode()),
        f"{payload_text}.",
        payload_text,
        "garbage",
        "a.b",
        "x" * 600 + "." + "y" * 43,
        "%00%ff.%2e%2e",
    ]
    for token_text in forged:
        assert_error(httpx.get(f"{base}/{token_text}"), 403, "invalid_download_url")
    # an encoded slash leaves the route: still a JSON 404, never a file
    assert_error(httpx.get(f"{base}/..%2F..%2Fetc%2Fpasswd"), 404, "not_found")
    assert httpx.get(url).status_code == 200  # the real one still works


def test_a_valid_token_for_a_missing_blob_is_gone(blob_server: KeyholeServer) -> None:
    kid, key = next(iter(master_keys(blob_server.home).items()))
    token = sign(key, f"1:{kid}:{uuid.uuid4()}:{int(time.time()) + 600}".encode())
    assert_error(httpx.get(f"{blob_server.url}/api/blobs/{token}"), 410, "blob_gone")


def test_master_key_rotation_keeps_urls_working(
    blob_server: KeyholeServer, client: AsyncApi, blob_upstream: Upstream
) -> None:
    job = finished_job(client, blob_upstream)
    old_url = job["result"]["bodyDownloadUrl"]
    idempotent = client.client.post(
        "/api/connections",
        json={"name": "x", "type": "nosuchtype", "configuration": {}},
        headers={"Idempotency-Key": f"rotation-{uuid.uuid4().hex}"},
    )
    assert idempotent.status_code == 404  # a stored outcome: one more ciphertext to rotate
    before = set(master_keys(blob_server.home))
    report = json.loads(blob_server.cli("keys", "rotate-master").stdout)
    assert report["remaining_under_old_keys"] == 0
    assert report["reencrypted"] >= 3  # connection secrets, job payloads, idempotent responses
    [new_kid] = set(master_keys(blob_server.home)) - before
    assert httpx.get(old_url).status_code == 200  # verified with the key it names
    fresh = client.job(job["job_id"]).json()["data"]["result"]["bodyDownloadUrl"]
    assert unb64(fresh.rsplit("/", 1)[1].split(".")[0]).decode().split(":")[1] == new_kid
    assert httpx.get(fresh).content == b"x" * 5000


# -- expiry -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("blobs-short")
    env = server_env(
        home,
        KEYHOLE_BLOB_URL_TTL_SECONDS="2",
        KEYHOLE_JOB_TTL_SECONDS="8",
        KEYHOLE_PURGE_INTERVAL_SECONDS="1",
    )
    server = KeyholeServer(home, env).start()
    yield server
    server.stop()


def poll(fetch: Any, until: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_an_expired_url_is_gone_and_the_job_hands_out_a_new_one(
    short_lived: KeyholeServer, blob_upstream: Upstream
) -> None:
    keys = short_lived.bootstrap("short", "s@short.test")
    client = api(short_lived.url, keys.bearer)
    job = finished_job(client, blob_upstream)
    url = job["result"]["bodyDownloadUrl"]
    response = poll(lambda: httpx.get(url), lambda r: r.status_code == 410)
    assert_error(response, 410, "download_url_expired")
    assert "fresh bodyDownloadUrl" in response.json()["message"]
    again = client.job(job["job_id"])
    if again.status_code == 200:  # the job itself lives a little longer than its URLs
        assert again.json()["data"]["result"]["bodyDownloadUrl"] != url


def test_expired_bodies_are_deleted(short_lived: KeyholeServer, blob_upstream: Upstream) -> None:
    keys = short_lived.bootstrap("short", "s@short.test")
    client = api(short_lived.url, keys.bearer)
    job = finished_job(client, blob_upstream)
    stored = list((short_lived.home / "blobs").rglob(f"*{job['job_id']}*/*"))
    assert len(stored) == 1 and stored[0].stat().st_size == 5000
    gone = poll(lambda: stored[0].exists(), lambda exists: not exists)
    assert gone is False, "the expired body is still on disk"
    response = client.job(job["job_id"])
    assert (response.status_code, response.json()["key"]) == (404, "job_not_found")
