"""Incomplete uploads that dead writers left behind, found by age and aborted.

A write that fails or is cancelled aborts its own multipart upload (``BlobStore.put_stream``). A
process that dies mid-write (``kill -9``, a lost machine) cannot: its upload stays in the bucket,
invisible to object listings and billed for its parts, and nothing else names it. The purge
therefore also sweeps by age:

* S3: incomplete multipart uploads under Keyhole's prefix initiated before the cutoff are
  aborted. obstore exposes neither ListMultipartUploads nor AbortMultipartUpload, so these two
  calls are made here, SigV4-signed with the static credentials of the ``AWS_*`` environment
  obstore reads, over the standard library's HTTP client in a thread, each under a deadline.
  Without static credentials (an instance or pod role) the sweep cannot sign; it says so once
  at start, and the bucket's lifecycle rule is then the only line of defence.
* A local directory: obstore stages a multipart write in ``<key>#<n>`` and renames it into place
  when complete. Staging files not written to since the cutoff are deleted (keys never hold ``#``).
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import SplitResult, urlsplit
from xml.etree import ElementTree

from keyhole.blobs.sigv4 import Credentials, canonical_query, encode, sign

logger = logging.getLogger(__name__)

CALL_SECONDS = 30.0
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a listing page of 1,000 uploads is well under 1 MiB
_STAGING = re.compile(r"#[0-9]+$")
_TRUE = ("1", "true", "yes", "on")
_UPLOAD_FIELDS = frozenset(("Key", "UploadId", "Initiated"))


class UploadSweeper(Protocol):
    async def abort_older_than(self, cutoff: datetime) -> int:
        """Abort the incomplete uploads started (S3) or last written (local) before ``cutoff``;
        returns how many were aborted."""


class S3CallFailed(Exception):
    """S3 refused a listing or an abort (the purge logs it and tries again next interval)."""


@dataclass(frozen=True, slots=True)
class PendingUpload:
    key: str
    upload_id: str
    initiated: datetime


class S3Uploads:
    def __init__(self, bucket_url: str, *, prefix: str, region: str, credentials: Credentials | None) -> None:
        self._endpoint: SplitResult = urlsplit(bucket_url)
        self._bucket_path = self._endpoint.path.rstrip("/")
        self._host = self._endpoint.netloc.rpartition("@")[2]
        self._prefix = prefix
        self._region = region
        self._credentials = credentials

    @classmethod
    def from_environment(
        cls, bucket: str, prefix: str | None, environ: Mapping[str, str] = os.environ
    ) -> S3Uploads:
        """The bucket as obstore reaches it from the same ``AWS_*`` variables (endpoint, region,
        path or virtual-hosted style, static credentials)."""
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint = next(
            (
                environ[name]
                for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
                if environ.get(name)
            ),
            None,
        )
        if environ.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "").lower() in _TRUE:
            bucket_url = endpoint or f"https://{bucket}.s3.{region}.amazonaws.com"
        else:
            bucket_url = f"{(endpoint or f'https://s3.{region}.amazonaws.com').rstrip('/')}/{bucket}"
        key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
        credentials = None
        if key_id and secret:
            token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_TOKEN") or None
            credentials = Credentials(key_id, secret, token)
        else:
            logger.warning(
                "incomplete multipart uploads in s3://%s cannot be swept: the sweep signs with "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which are not set; rely on the bucket's "
                "AbortIncompleteMultipartUpload lifecycle rule",
                bucket,
            )
        return cls(
            bucket_url,
            prefix=f"{prefix.strip('/')}/" if prefix else "",
            region=region,
            credentials=credentials,
        )

    async def abort_older_than(self, cutoff: datetime) -> int:
        if self._credentials is None:
            return 0
        aborted = 0
        async for page in self._pages():
            for upload in page:
                if upload.initiated < cutoff and await self._abort(upload):
                    aborted += 1
        return aborted

    async def _pages(self) -> AsyncIterator[list[PendingUpload]]:
        """Pages of the incomplete multipart uploads under the prefix (ListMultipartUploads)."""
        markers: list[tuple[str, str]] = []
        while True:
            params = [("uploads", ""), ("prefix", self._prefix), *markers]
            status, body = await self._call("GET", self._bucket_path or "/", params)
            if status != 200:
                raise S3CallFailed(f"ListMultipartUploads answered {status} {_error_code(body)}")
            fields, uploads = _listing(body)
            yield [
                PendingUpload(upload["Key"], upload["UploadId"], _timestamp(upload["Initiated"]))
                for upload in uploads
            ]
            next_key = fields.get("NextKeyMarker")
            if fields.get("IsTruncated") != "true" or not next_key:
                return
            markers = [("key-marker", next_key), ("upload-id-marker", fields.get("NextUploadIdMarker", ""))]

    async def _abort(self, upload: PendingUpload) -> bool:
        """AbortMultipartUpload; False when the upload was already gone (completed or aborted)."""
        path = f"{self._bucket_path}/{encode(upload.key, keep_slashes=True)}"
        status, body = await self._call("DELETE", path, [("uploadId", upload.upload_id)])
        if status == 404:
            return False
        if status >= 300:
            raise S3CallFailed(f"AbortMultipartUpload answered {status} {_error_code(body)}")
        return True

    async def _call(self, method: str, path: str, params: list[tuple[str, str]]) -> tuple[int, bytes]:
        assert self._credentials is not None
        query = canonical_query(params)
        headers = sign(
            self._credentials,
            method=method,
            host=self._host,
            path=path,
            query=query,
            region=self._region,
            now=datetime.now(UTC),
        )
        async with asyncio.timeout(CALL_SECONDS):
            return await asyncio.to_thread(_exchange, self._endpoint, method, f"{path}?{query}", headers)


def _exchange(endpoint: SplitResult, method: str, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    kind = http.client.HTTPSConnection if endpoint.scheme == "https" else http.client.HTTPConnection
    connection = kind(endpoint.hostname or "", endpoint.port, timeout=CALL_SECONDS)
    try:
        connection.request(method, target, headers=headers)
        response = connection.getresponse()
        body = response.read(MAX_ANSWER_BYTES + 1)
    finally:
        connection.close()
    if len(body) > MAX_ANSWER_BYTES:
        raise S3CallFailed(f"{method} answered more than {MAX_ANSWER_BYTES} bytes")
    return response.status, body


def _parse(body: bytes) -> ElementTree.Element:
    # The operator's own endpoint answers; expat (>= 2.4.1) bounds entity expansion and
    # ElementTree never fetches external entities.
    return ElementTree.fromstring(body)  # noqa: S314


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _listing(body: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The top-level fields and the uploads of a ListMultipartUploadsResult (any namespace)."""
    fields: dict[str, str] = {}
    uploads: list[dict[str, str]] = []
    for element in _parse(body):
        name = _local(element.tag)
        if name == "Upload":
            upload = {_local(child.tag): child.text or "" for child in element}
            if upload.keys() >= _UPLOAD_FIELDS:
                uploads.append(upload)
        else:
            fields[name] = element.text or ""
    return fields, uploads


def _error_code(body: bytes) -> str:
    try:
        root = _parse(body)
    except ElementTree.ParseError:
        return ""
    return next((child.text or "" for child in root if _local(child.tag) == "Code"), "")


def _timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class LocalPartials:
    def __init__(self, root: Path) -> None:
        self._root = root

    async def abort_older_than(self, cutoff: datetime) -> int:
        return await asyncio.to_thread(self._remove, cutoff.timestamp())

    def _remove(self, before: float) -> int:
        removed = 0
        for directory, _, names in os.walk(self._root):
            for name in names:
                if not _STAGING.search(name):
                    continue
                path = os.path.join(directory, name)
                try:
                    if os.stat(path).st_mtime < before:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:  # completed (renamed) or removed meanwhile
                    continue
        return removed
