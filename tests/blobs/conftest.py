"""Fixtures of the blob suite: the jobs suite's upstream, and a local S3-compatible server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from conftest import PYTHON, free_port, stop_process, wait_for
from jobs.support import Upstream, upstream

BUCKET = "keyhole-blobs"


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

    def client(self):  # type: ignore[no-untyped-def]
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


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's S3 server: a real S3 HTTP API on loopback, offline."""
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
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
