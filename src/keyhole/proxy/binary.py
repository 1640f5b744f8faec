"""Binary upstream answers streamed into the blob store instead of being returned inline.

A proxy call made with a :class:`BinarySink` hands a binary body (any content type that is not
text, see ``proxy.response.is_text``) to the sink chunk by chunk: memory stays at one chunk
whatever the file's size. The chunks come from ``proxy.upstream`` (``Answer.stream``): capped at
the connection's ``max_async_body_bytes`` (the cap of everything that streams to the blob store)
and scrubbed of echoed secrets on the way. The caller gets a short-lived download URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from keyhole.blobs import BlobStore
from keyhole.proxy.response import is_text
from keyhole.store.base import utcnow


@dataclass(frozen=True, slots=True)
class BinaryBody:
    url: str  # fetches the body without any other credential, until expires_at
    content_type: str
    size: int
    expires_at: datetime


class BinarySink(Protocol):
    async def __call__(
        self, chunks: AsyncIterator[bytes], *, content_type: str, organization_id: str, call_id: str
    ) -> BinaryBody: ...


def is_binary(content_type: str, method: str) -> bool:
    """Whether an answer goes to the sink: a non-text content type on a call that has a body."""
    return method != "HEAD" and bool(content_type) and not is_text(content_type)


class BlobSink:
    """A sink writing to the blob store; download URLs are built on ``base_url()`` (local
    backend) or presigned by the object store, and live ``ttl_seconds``. The base URL is asked
    for only when a binary answer is stored: most calls never need it."""

    def __init__(self, blobs: BlobStore, base_url: Callable[[], str], *, ttl_seconds: int) -> None:
        self._blobs = blobs
        self._base_url = base_url
        self._ttl = timedelta(seconds=ttl_seconds)

    async def __call__(
        self, chunks: AsyncIterator[bytes], *, content_type: str, organization_id: str, call_id: str
    ) -> BinaryBody:
        ref = await self._blobs.put_stream(
            f"proxy/{organization_id}/{call_id}",
            chunks,
            organization_id=organization_id,
            content_type=content_type,
            expires_at=utcnow() + self._ttl,
        )
        url, expires_at = await self._blobs.download_url(ref, self._base_url())
        return BinaryBody(url, ref.content_type, ref.size, expires_at)
