"""Fixtures of the blob suite: the jobs suite's upstream, a local S3-compatible server, and
blob stores on it."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from conftest import PYTHON, free_port, stop_process, wait_for
from jobs.support import Upstream, upstream
from keyhole.blobs import BlobStore, DownloadSigner, open_backend
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.store.migrate import upgrade
from keyhole.tenancy.models import Organization
from keyhole.vault import KeyRing

BUCKET = "keyhole-blobs"
S3_SERVER = Path(__file__).with_name("s3_server.py")


@pytest.fixture(scope="session")
def blob_upstream() -> Iterator[Upstream]:
    with upstream() as instance:
        yield instance


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str = "AKIATESTKEYHOLE"
    secret_key: str = "s3-secret-DO-NOT-LEAK-7d1c"
    region: str = "us-east-1"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]

    def uploads(self, prefix: str = "") -> list[dict[str, Any]]:
        """The incomplete multipart uploads under ``prefix`` (Key, UploadId, Initiated…)."""
        listing = self.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
        return list(listing.get("Uploads", []))

    def parts(self, upload: dict[str, Any]) -> list[dict[str, Any]]:
        """The parts an incomplete upload already holds in the bucket."""
        listing = self.client().list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
        return list(listing.get("Parts", []))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's S3 server: a real S3 HTTP API on loopback, offline (see s3_server.py)."""
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, str(S3_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/moto-api/", process)
        server = S3Server(f"http://127.0.0.1:{port}")
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        stop_process(process)


@asynccontextmanager
async def blob_store(
    home: Path,
    blob_url: str,
    env: dict[str, str],
    *,
    upload_max_age_seconds: int = 3600,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[tuple[BlobStore, str]]:
    """A blob store on ``blob_url`` (its own SQLite store and organization), built in this process
    from ``env`` exactly as a server builds it."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # obstore reads the standard AWS_* environment, as in production
    database_url = f"sqlite+aiosqlite:///{home / 'store.db'}"
    await upgrade(database_url)
    database = Database(database_url)
    organization = Organization(id=str(uuid.uuid4()), name=f"s3-{uuid.uuid4().hex[:6]}", created_at=utcnow())
    async with database.transaction() as session:
        session.add(organization)
    store = BlobStore(
        database,
        open_backend(blob_url, home),
        DownloadSigner(KeyRing.load(None, home / "master.keys")),
        url_ttl_seconds=60,
        upload_max_age_seconds=upload_max_age_seconds,
        clock=clock,
    )
    try:
        yield store, organization.id
    finally:
        await database.dispose()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
