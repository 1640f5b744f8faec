"""Each export of a finished query is made once and stored, so that later downloads of the same
file have a length and answer byte ranges.

The first request for a file (one run of a query, one format) streams it as it is made and hands
the same bytes to the blob store (``queries/<id>/<attempt>/export.<ext>``, expiring with the
query, like its pages). A copy is served only once its write has finished: a download cut short,
a page that cannot be read or a failed write deletes it (``BlobStore.put_stream`` removes what an
interrupted write left), and a blob whose write has not finished is never read. While one request
writes the copy, another streams its own file without storing it (``replace=False`` refuses a
second writer), so two writers never race on one object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from typing import Any, ClassVar

from keyhole.blobs import BlobStore
from keyhole.blobs.store import BlobExists
from keyhole.errors import Gone, KeyholeError
from keyhole.queries.exports import EXTENSIONS, Export
from keyhole.store.base import utcnow

logger = logging.getLogger(__name__)

COPY_CHUNKS_AHEAD = 2  # chunks the copy may lag behind the download before the download waits
_RANGE = re.compile(r"bytes=(?:([0-9]{1,18})-([0-9]{0,18})|-([0-9]{1,18}))", re.IGNORECASE)
_WRITES: set[asyncio.Task[Any]] = set()  # copies being written, referenced until they end


class RangeNotSatisfiable(KeyholeError):
    status: ClassVar[int] = 416
    default_key: ClassVar[str] = "range_not_satisfiable"


def export_key(query_id: str, attempt: int, format: str) -> str:
    """Blob key of the stored copy of an export, next to the pages of the same run."""
    return f"queries/{query_id}/{attempt}/export.{EXTENSIONS[format]}"


async def served(
    blobs: BlobStore,
    made: Export,
    key: str,
    *,
    organization_id: str,
    expires_at: datetime,
    expired: Callable[[], KeyholeError],
    missing: Callable[[], KeyholeError],
) -> Export:
    """``made`` read from its stored copy when there is one (with its size and ranges), else
    streamed while the copy is written. ``expired`` is raised when the results expire during a
    download, ``missing`` when the stored copy is gone from the store."""
    stored = await blobs.stat(key)
    if stored is None:

        async def store(chunks: AsyncIterator[bytes]) -> None:
            await blobs.put_stream(
                key,
                chunks,
                organization_id=organization_id,
                content_type=made.media_type,
                expires_at=expires_at,
                replace=False,
            )

        return dataclasses.replace(made, chunks=_teed(made.chunks, store, key))

    async def read(start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            chunks = await blobs.open_stream(key, start=start, end=end)
        except Gone:
            raise missing() from None
        return _until(expires_at, chunks, expired)

    async def whole() -> AsyncIterator[bytes]:
        async for chunk in await read():
            yield chunk

    return dataclasses.replace(made, chunks=whole(), size=stored.size, read=read)


async def _until(
    expires_at: datetime, chunks: AsyncIterator[bytes], expired: Callable[[], KeyholeError]
) -> AsyncIterator[bytes]:
    """A download that outlives the results is cut, as a page read would be."""
    async for chunk in chunks:
        if expires_at <= utcnow():
            raise expired()
        yield chunk


async def _teed(
    chunks: AsyncIterator[bytes], store: Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, None]], key: str
) -> AsyncIterator[bytes]:
    """``chunks`` as they come, each also handed to ``store``; the copy is cancelled (and so
    deleted) unless every chunk was made, as soon as the iterator is closed early (``aclose``).
    A copy that cannot be written leaves the download going without it."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=COPY_CHUNKS_AHEAD)

    async def feed() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    writing = asyncio.create_task(store(feed()), name=f"export-copy {key}")
    _WRITES.add(writing)
    writing.add_done_callback(_written)
    complete = False
    try:
        async for chunk in chunks:
            await _hand_over(queue, chunk, writing)
            yield chunk
        await _hand_over(queue, None, writing)
        # The last bytes go out once the copy is complete, so that the next request finds it.
        await asyncio.wait([writing])
        complete = True
    finally:
        if not complete:
            writing.cancel()


async def _hand_over(
    queue: asyncio.Queue[bytes | None], item: bytes | None, writing: asyncio.Task[Any]
) -> None:
    """Queue ``item`` for the copy, waiting while it lags behind, unless its write has ended."""
    if writing.done():
        return
    if not queue.full():
        queue.put_nowait(item)
        return
    putting = asyncio.ensure_future(queue.put(item))
    try:
        await asyncio.wait([putting, writing], return_when=asyncio.FIRST_COMPLETED)
    finally:
        putting.cancel()


def _written(writing: asyncio.Task[Any]) -> None:
    _WRITES.discard(writing)
    if writing.cancelled():
        return
    error = writing.exception()
    if isinstance(error, BlobExists):
        logger.debug("%s: another download is storing this export", writing.get_name())
    elif error is not None:
        logger.warning("%s was not stored: %s", writing.get_name(), error)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The bytes ``start`` to ``end`` (exclusive) that a ``Range`` header asks of a file of
    ``size`` bytes; None for the whole file: no header, or one that is malformed, inverted or asks
    for several ranges (RFC 9110 lets a server ignore those). 416 for a range past the end."""
    found = _RANGE.fullmatch(header.strip()) if header else None
    if found is None:
        return None
    first, last, suffix = found.groups()
    if suffix is not None:
        if int(suffix) == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(size - int(suffix), 0), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, min(int(last) + 1, size) if last else size


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"the range asked for lies outside the file, which has {size} bytes",
        metadata={"size": size},
        headers={"Content-Range": f"bytes */{size}"},
    )
