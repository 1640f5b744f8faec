"""No incomplete upload outlives its write.

A write whose source fails, or that is cancelled, aborts its multipart upload before it returns;
a server or worker stopped with SIGTERM mid-upload aborts it on the way out. What a process
killed with SIGKILL leaves behind (an S3 multipart upload, a local partial file) is aborted by
the sweep once older than ``KEYHOLE_BLOB_UPLOAD_MAX_AGE_SECONDS``, while writes still in flight
are left alone and complete. Uploads are listed with boto3 against moto's S3 server.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from pydantic import ValidationError

from clock import FakeClock
from conftest import KeyholeServer, server_env
from jobs.support import Databases, Upstream, api, deploy, kill9
from keyhole.blobs import BlobStore
from keyhole.blobs.sigv4 import Credentials, canonical_query, encode, sign
from keyhole.blobs.store import PART_SIZE
from keyhole.errors import UpstreamTimeout
from keyhole.settings import Settings
from keyhole.store.base import utcnow

from .conftest import BUCKET, S3Server, blob_store

MIB = 1024 * 1024
MAX_AGE = 5
SLOW_BODY = {"seconds": 40, "size": 80 * MIB}  # 4 MiB every 2 s: parts reach the bucket at once
T = TypeVar("T")


@pytest.fixture(scope="module")
def databases() -> Iterator[Databases]:
    instance = Databases()
    yield instance
    instance.drop_all()


def _prefix(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def _until(what: str, found: Callable[[], T | None], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout} s")
        time.sleep(0.2)


def _stored_uploads(s3: S3Server, prefix: str) -> list[str]:
    """Keys of the incomplete uploads under ``prefix`` that already hold parts (billed bytes)."""
    return sorted(upload["Key"] for upload in s3.uploads(f"{prefix}/") if s3.parts(upload))


def _partial_files(root: Path) -> list[str]:
    """obstore's staging files (``<key>#<n>``) under a local blob directory, with data in them."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*#*") if path.stat().st_size)


async def _parts_then_fail(parts: int) -> AsyncIterator[bytes]:
    for index in range(parts):
        yield bytes([index + 1]) * PART_SIZE
    raise UpstreamTimeout("timed out after 1000 ms waiting for the upstream")


async def _parts_then_hold(parts: int, release: asyncio.Event, more: int = 0) -> AsyncIterator[bytes]:
    """A slow upstream: ``parts`` parts at once, then nothing until ``release``, then ``more``."""
    for index in range(parts):
        yield bytes([index + 1]) * PART_SIZE
    await release.wait()
    for _ in range(more):
        yield b"m" * PART_SIZE


def _put(store: BlobStore, key: str, organization_id: str, chunks: AsyncIterator[bytes]) -> Any:
    return store.put_stream(
        key,
        chunks,
        organization_id=organization_id,
        content_type="application/octet-stream",
        expires_at=utcnow() + timedelta(hours=1),
    )


# -- writes that end badly abort their own upload --------------------------------------------


async def test_a_write_whose_source_fails_leaves_no_upload(tmp_path: Path, s3: S3Server) -> None:
    prefix = _prefix("failing")
    async with blob_store(tmp_path, f"s3://{BUCKET}/{prefix}", s3.env) as (store, organization_id):
        with pytest.raises(UpstreamTimeout):
            await _put(store, f"{organization_id}/failed", organization_id, _parts_then_fail(3))
    assert await asyncio.to_thread(s3.uploads, f"{prefix}/") == []
    assert await asyncio.to_thread(s3.keys, f"{prefix}/") == []


@pytest.mark.parametrize("cancels", [1, 2], ids=["cancelled", "cancelled-twice"])
async def test_a_cancelled_write_leaves_no_upload(tmp_path: Path, s3: S3Server, cancels: int) -> None:
    prefix = _prefix("cancelled")
    async with blob_store(tmp_path, f"s3://{BUCKET}/{prefix}", s3.env) as (store, organization_id):
        chunks = _parts_then_hold(2, asyncio.Event())
        writing = asyncio.create_task(_put(store, f"{organization_id}/cancelled", organization_id, chunks))
        stored = await asyncio.to_thread(_until, "two parts in the bucket", lambda: _two_parts(s3, prefix))
        assert stored["Key"] == f"{prefix}/{organization_id}/cancelled"
        for _ in range(cancels):
            writing.cancel()
            await asyncio.sleep(0)  # a second cancellation lands while the upload is being aborted
        with pytest.raises(asyncio.CancelledError):
            await writing
        # Aborted before the cancelled write returned, not some time later.
        assert await asyncio.to_thread(s3.uploads, f"{prefix}/") == []
    assert await asyncio.to_thread(s3.keys, f"{prefix}/") == []


def _two_parts(s3: S3Server, prefix: str) -> dict[str, Any] | None:
    return next((upload for upload in s3.uploads(f"{prefix}/") if len(s3.parts(upload)) >= 2), None)


async def test_a_cancelled_local_write_leaves_no_partial_file(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    async with blob_store(tmp_path, f"file://{root}", {}) as (store, organization_id):
        chunks = _parts_then_hold(1, asyncio.Event())
        writing = asyncio.create_task(_put(store, f"{organization_id}/cancelled", organization_id, chunks))
        await asyncio.to_thread(_until, "a partial file", lambda: _partial_files(root))
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert [path for path in root.rglob("*") if path.is_file()] == []


# -- a graceful stop aborts the uploads in flight --------------------------------------------


@pytest.mark.parametrize("engine", ["embedded", "procrastinate"])
def test_sigterm_mid_upload_aborts_it(
    tmp_path: Path, s3: S3Server, blob_upstream: Upstream, databases: Databases, engine: str
) -> None:
    prefix = _prefix(f"sigterm-{engine}")
    deployment = deploy(
        tmp_path, engine, databases, workers=1, KEYHOLE_BLOB_URL=f"s3://{BUCKET}/{prefix}", **s3.env
    )
    try:
        keys = deployment.server.bootstrap("sigterm", "s@sigterm.test")
        client = api(deployment.server.url, keys.bearer)
        client.accepted(client.connection(blob_upstream.url), "/slow", query={**SLOW_BODY, "tag": prefix})
        _until("a part of the async body in the bucket", lambda: _stored_uploads(s3, prefix))
        runner = deployment.workers[0] if engine == "procrastinate" else deployment.server.process
        assert runner is not None
        runner.send_signal(signal.SIGTERM)
        runner.wait(60)
        assert s3.uploads(f"{prefix}/") == []
    finally:
        deployment.stop()


# -- what a killed process left is swept by age ----------------------------------------------


@pytest.mark.parametrize("backend", ["s3", "local"])
async def test_the_sweep_aborts_what_a_killed_server_left_and_spares_live_writes(
    tmp_path: Path, s3: S3Server, blob_upstream: Upstream, backend: str
) -> None:
    prefix = _prefix(f"killed-{backend}")
    root = tmp_path / "blobs"
    blob_url = f"s3://{BUCKET}/{prefix}" if backend == "s3" else f"file://{root}"

    def leftovers() -> list[str]:
        return _stored_uploads(s3, prefix) if backend == "s3" else _partial_files(root)

    home = tmp_path / "killed"
    home.mkdir()
    server = KeyholeServer(home, server_env(home, KEYHOLE_BLOB_URL=blob_url, **s3.env)).start()
    try:
        keys = server.bootstrap("killed", "k@killed.test")
        client = api(server.url, keys.bearer)
        client.accepted(client.connection(blob_upstream.url), "/slow", query={**SLOW_BODY, "tag": prefix})
        orphans = await asyncio.to_thread(_until, "a part of the async body stored", leftovers)
        assert server.process is not None
        kill9(server.process)
        server.process = None
    finally:
        server.stop()
    killed_at = time.time()
    assert await asyncio.to_thread(leftovers) == orphans  # nobody will ever abort these itself

    # The orphan's upload started (or its partial file was last written) before the kill, the
    # live write starts after it: the sweep sees the max age gone by since the kill.
    clock = FakeClock(killed_at + MAX_AGE)
    async with blob_store(tmp_path, blob_url, s3.env, upload_max_age_seconds=MAX_AGE, clock=clock) as (
        store,
        organization_id,
    ):
        release = asyncio.Event()
        chunks = _parts_then_hold(1, release, more=1)
        live = asyncio.create_task(_put(store, f"{organization_id}/live", organization_id, chunks))
        stored = await asyncio.to_thread(_until, "the live write's part", lambda: len(leftovers()) > 1)
        assert stored

        assert await store.abort_stale_uploads() == 1
        remaining = await asyncio.to_thread(leftovers)
        assert len(remaining) == 1 and f"{organization_id}/live" in remaining[0], remaining

        release.set()
        ref = await live  # the sweep did not disturb the write in flight
        assert ref.size == 2 * PART_SIZE
        assert sum([len(chunk) async for chunk in await store.open_stream(ref.key)]) == 2 * PART_SIZE
        assert await store.abort_stale_uploads() == 0
    assert await asyncio.to_thread(leftovers) == []


def test_a_server_sweeps_on_its_purge_within_its_prefix(tmp_path: Path, s3: S3Server) -> None:
    prefix = _prefix("purge")
    client = s3.client()
    mine = client.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}/org/jobs/job/body-1")
    client.upload_part(
        Bucket=BUCKET, Key=mine["Key"], UploadId=mine["UploadId"], PartNumber=1, Body=b"p" * PART_SIZE
    )
    theirs = client.create_multipart_upload(Bucket=BUCKET, Key=f"not-{prefix}/someone-else")
    settings = {
        "KEYHOLE_BLOB_URL": f"s3://{BUCKET}/{prefix}",
        "KEYHOLE_BLOB_UPLOAD_MAX_AGE_SECONDS": "2",
        "KEYHOLE_ASYNC_PROXY_DEADLINE_SECONDS": "1",
        "KEYHOLE_PURGE_INTERVAL_SECONDS": "1",
    }
    server = KeyholeServer(tmp_path, server_env(tmp_path, **settings, **s3.env)).start()
    try:
        _until("the stale upload aborted", lambda: not s3.uploads(f"{prefix}/"))
        assert [upload["Key"] for upload in s3.uploads(f"not-{prefix}/")] == [theirs["Key"]]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "keyhole_blob_stale_uploads_aborted_total 1.0" in metrics
        _until("the sweep's log line", lambda: "aborted 1 incomplete blob uploads" in server.logs())
        assert s3.secret_key not in server.logs()
    finally:
        server.stop()
        client.abort_multipart_upload(Bucket=BUCKET, Key=theirs["Key"], UploadId=theirs["UploadId"])


def test_the_max_age_outlives_every_write() -> None:
    assert Settings(async_proxy_deadline_seconds=600).resolved_blob_upload_max_age_seconds == 4200
    assert Settings(blob_upload_max_age_seconds=9000).resolved_blob_upload_max_age_seconds == 9000
    with pytest.raises(ValidationError, match="KEYHOLE_BLOB_UPLOAD_MAX_AGE_SECONDS"):
        Settings(async_proxy_deadline_seconds=600, blob_upload_max_age_seconds=600)


# -- the two S3 calls obstore does not make --------------------------------------------------


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////session"])
@pytest.mark.parametrize("endpoint", ["https://s3.eu-west-3.amazonaws.com", "http://127.0.0.1:9000"])
def test_signatures_match_botocore(token: str | None, endpoint: str) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    host = endpoint.split("://", 1)[1]
    calls = [
        (
            "GET",
            "/bucket",
            canonical_query([("uploads", ""), ("prefix", "key hole/"), ("key-marker", "a=b~c")]),
        ),
        (
            "DELETE",
            "/bucket/" + encode("key hole/org/jobs/j=1/body-1", keep_slashes=True),
            canonical_query([("uploadId", "2~abc+def/ghi=")]),
        ),
    ]
    for method, path, query in calls:
        request = AWSRequest(method=method, url=f"{endpoint}{path}?{query}")
        S3SigV4Auth(
            BotoCredentials("AKIDEXAMPLE", credentials.secret_access_key, token), "s3", "eu-west-3"
        ).add_auth(request)
        now = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        ours = sign(
            credentials, method=method, host=host, path=path, query=query, region="eu-west-3", now=now
        )
        assert ours["authorization"] == request.headers["Authorization"]
    assert credentials.secret_access_key not in repr(credentials)
    assert token is None or token not in repr(credentials)
