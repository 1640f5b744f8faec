"""The record batches of a columnar run, stored beside its pages, so that its typed exports
(Parquet, Arrow) are made from columns instead of decoding the pages again.

One blob per batch, ``queries/<id>/<attempt>/columns/<n>.arrows``: an Arrow IPC stream holding
one batch as the driver gave it, cut to the rows the pages hold, expiring with the query. The
run writes them as it goes (one write in flight, like the pages); an export reads them back one
at a time and turns each into the export schema (``columnar.export_batch``) in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from keyhole.errors import Gone
from keyhole.queries.columnar import export_batch

if TYPE_CHECKING:
    from keyhole.blobs import BlobStore

MEDIA_TYPE = "application/vnd.apache.arrow.stream"


class ColumnSink(Protocol):
    """Where the batches of one columnar run go."""

    @property
    def count(self) -> int:
        """Batches written so far."""

    async def write(self, batch: pa.RecordBatch) -> None:
        """Store the next batch (the previous one's write may still be finishing)."""

    async def finish(self) -> None:
        """Wait for the write in flight."""

    async def discard(self) -> None:
        """Delete every batch written (the run failed, or went to the row path)."""


def columns_key(query_id: str, attempt: int, number: int) -> str:
    return f"queries/{query_id}/{attempt}/columns/{number:06d}.arrows"


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


class BlobColumns:
    """The stored batches of one run of one query."""

    def __init__(
        self, blobs: BlobStore, query_id: str, attempt: int, *, organization_id: str, expires_at: datetime
    ) -> None:
        self._blobs = blobs
        self._query_id = query_id
        self._attempt = attempt
        self._organization_id = organization_id
        self._expires_at = expires_at
        self._writing: asyncio.Task[None] | None = None
        self.count = 0

    async def write(self, batch: pa.RecordBatch) -> None:
        await self.finish()
        number = self.count
        self.count += 1
        self._writing = asyncio.create_task(self._put(number, batch), name=f"query-columns-{number}")

    async def _put(self, number: int, batch: pa.RecordBatch) -> None:
        body = await asyncio.to_thread(_ipc, batch)

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        await self._blobs.put_stream(
            columns_key(self._query_id, self._attempt, number),
            chunks(),
            organization_id=self._organization_id,
            content_type=MEDIA_TYPE,
            expires_at=self._expires_at,
        )

    async def finish(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing

    async def discard(self) -> None:
        if self._writing is not None:
            self._writing.cancel()
            await asyncio.gather(self._writing, return_exceptions=True)
            self._writing = None
        for number in range(self.count):
            await self._blobs.delete(columns_key(self._query_id, self._attempt, number))
        self.count = 0

    async def read(self, count: int, schema: pa.Schema) -> AsyncIterator[pa.RecordBatch]:
        """The ``count`` stored batches in ``schema`` (the export schema), in order; ``Gone`` when
        one is no longer stored."""
        for number in range(count):
            chunks = await self._blobs.open_stream(columns_key(self._query_id, self._attempt, number))
            body = b"".join([chunk async for chunk in chunks])
            yield await asyncio.to_thread(_exported, body, schema)


def _exported(body: bytes, schema: pa.Schema) -> pa.RecordBatch:
    try:
        batch = pa.ipc.open_stream(body).read_next_batch()
    except (pa.ArrowInvalid, StopIteration):
        raise Gone("a stored batch of this result cannot be read", key="query_results_missing") from None
    return export_batch(batch, schema)
