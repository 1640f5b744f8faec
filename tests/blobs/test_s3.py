"""The blob store on S3-compatible storage (moto's S3 server on loopback): streamed multipart
writes, presigned download URLs, deletion and expiry."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import KeyholeServer, server_env
from jobs.support import TOKEN, Upstream, api
from jobs.upstream_server import CHUNK, pattern_chunk
from keyhole.blobs import BlobStore
from keyhole.store.base import utcnow

from .conftest import BUCKET, S3Server, blob_store

MIB = 1024 * 1024
PREFIX = "keyhole-test"


@pytest.fixture(scope="module")
def s3_keyhole(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("blobs-s3")
    env = server_env(home, KEYHOLE_BLOB_URL=f"s3://{BUCKET}/{PREFIX}", **s3.env)
    server = KeyholeServer(home, env).start()
    yield server
    server.stop()


def test_async_bodies_go_to_s3_behind_presigned_urls(
    s3_keyhole: KeyholeServer, s3: S3Server, blob_upstream: Upstream
) -> None:
    keys = s3_keyhole.bootstrap("s3", "s@s3.test")
    client = api(s3_keyhole.url, keys.bearer)
    connection = client.connection(blob_upstream.url)
    size = 12 * MIB + 5  # three multipart parts
    job = client.wait(client.accepted(connection, "/bytes", query={"size": size})["jobId"])
    assert job["status"] == "done", job
    assert job["result"]["contentLength"] == size

    url = job["result"]["bodyDownloadUrl"]
    assert url.startswith(f"{s3.endpoint}/{BUCKET}/{PREFIX}/{keys.organization_id}/jobs/{job['job_id']}/")
    query = parse_qs(urlsplit(url).query)
    assert int(query["X-Amz-Expires"][0]) <= 900
    assert "X-Amz-Signature" in query
    for secret in (s3.secret_key, TOKEN, keys.user_api_key):
        assert secret not in url
    assert not (s3_keyhole.home / "blobs").exists() or not any((s3_keyhole.home / "blobs").rglob("*.*"))

    digest = hashlib.sha256()
    with httpx.stream("GET", url) as download:
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/octet-stream"
        for chunk in download.iter_bytes():
            digest.update(chunk)
    expected = hashlib.sha256()
    for index in range(size // CHUNK + 1):
        expected.update(pattern_chunk(index, min(CHUNK, size - index * CHUNK)))
    assert digest.hexdigest() == expected.hexdigest()
    assert s3.keys(f"{PREFIX}/{keys.organization_id}/jobs/{job['job_id']}/") != []


@pytest.fixture
async def s3_store(tmp_path: Path, s3: S3Server) -> AsyncIterator[tuple[BlobStore, str]]:
    async with blob_store(tmp_path, f"s3://{BUCKET}/core-{uuid.uuid4().hex[:8]}", s3.env) as opened:
        yield opened


async def _pieces(count: int, size: int) -> AsyncIterator[bytes]:
    for index in range(count):
        yield bytes([index % 251]) * size


async def test_streamed_writes_reads_and_deletes(s3_store: tuple[BlobStore, str], s3: S3Server) -> None:
    store, organization_id = s3_store
    expires = utcnow() + timedelta(hours=1)
    ref = await store.put_stream(
        f"{organization_id}/big",
        _pieces(24, MIB // 2),
        organization_id=organization_id,
        content_type="text/csv",
        expires_at=expires,
    )
    assert (ref.size, ref.content_type) == (12 * MIB, "text/csv")
    received = hashlib.sha256()
    async for chunk in await store.open_stream(ref.key):
        received.update(chunk)
    sent = hashlib.sha256()
    async for piece in _pieces(24, MIB // 2):
        sent.update(piece)
    assert received.hexdigest() == sent.hexdigest()

    url, until = await store.download_url(ref, "http://unused")
    assert until <= expires
    fetched = httpx.get(url)
    assert (fetched.status_code, len(fetched.content), fetched.headers["content-type"]) == (
        200,
        12 * MIB,
        "text/csv",
    )

    empty = await store.put_stream(
        f"{organization_id}/empty",
        _pieces(0, 1),
        organization_id=organization_id,
        content_type="text/plain",
        expires_at=expires,
    )
    assert empty.size == 0
    assert [chunk async for chunk in await store.open_stream(empty.key)] in ([], [b""])

    await store.delete(ref.key)
    assert await store.get(ref.id) is None
    assert httpx.get(url).status_code == 404


async def test_expired_blobs_are_purged(s3_store: tuple[BlobStore, str], s3: S3Server) -> None:
    store, organization_id = s3_store
    past = utcnow() - timedelta(seconds=1)
    expired = await store.put_stream(
        f"{organization_id}/old",
        _pieces(2, 1024),
        organization_id=organization_id,
        content_type="text/plain",
        expires_at=past,
    )
    kept = await store.put_stream(
        f"{organization_id}/new",
        _pieces(2, 1024),
        organization_id=organization_id,
        content_type="text/plain",
        expires_at=utcnow() + timedelta(hours=1),
    )
    assert await store.get(expired.id) is None  # expired blobs are invisible at once
    assert await store.purge_expired() == 1
    remaining = s3.keys()
    assert not any(key.endswith(f"{organization_id}/old") for key in remaining)
    assert any(key.endswith(f"{organization_id}/new") for key in remaining)
    assert await store.get(kept.id) is not None
