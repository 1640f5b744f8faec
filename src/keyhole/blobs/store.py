"""The blob store: streamed writes and reads, expiry, and short-lived download URLs.

Bytes never sit whole in memory: writes are multipart uploads fed by an async iterator,
reads are streams. Every object has a ``blobs`` row (written first) that carries its
organization, size, content type and expiry. A write that fails or is cancelled aborts its
multipart upload before it returns; the uploads of writers that died are aborted by age
(``abort_stale_uploads``, run by the purge).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import obstore
from obstore.exceptions import BaseError as ObjectStoreError
from obstore.exceptions import NotFoundError
from obstore.store import S3Store
from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError

from keyhole.blobs import metrics
from keyhole.blobs.backends import Backend
from keyhole.blobs.download_tokens import DownloadSigner
from keyhole.blobs.models import Blob
from keyhole.errors import Conflict, Gone, InvalidRequest, KeyholeError
from keyhole.store.database import Database

if TYPE_CHECKING:
    from obstore import GetOptions

logger = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.=-]*(/[A-Za-z0-9_-][A-Za-z0-9_.=-]*)*$")
PART_SIZE = 5 * 1024 * 1024  # S3's minimum multipart part; at most PARTS_IN_FLIGHT are buffered
PARTS_IN_FLIGHT = 2
READ_CHUNK = 256 * 1024
ABORT_WAIT_SECONDS = 30.0  # an interrupted write waits this long for its abort; then the sweep has it


class BlobStoreUnavailable(KeyholeError):
    status: ClassVar[int] = 503
    default_key: ClassVar[str] = "blob_store_unavailable"


class BlobExists(Conflict):
    default_key: ClassVar[str] = "blob_exists"


@dataclass(frozen=True, slots=True)
class BlobRef:
    id: str
    key: str
    organization_id: str
    size: int
    content_type: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Download:
    blob: BlobRef
    chunks: AsyncIterator[bytes]


def _gone(what: str = "the blob behind this download URL") -> Gone:
    return Gone(f"{what} has expired or was deleted", key="blob_gone")


# A missing object: obstore's own error on S3, Python's FileNotFoundError on a local directory.
_MISSING = (NotFoundError, FileNotFoundError)


def _ref(row: Blob) -> BlobRef:
    return BlobRef(row.id, row.key, row.organization_id, row.size or 0, row.content_type, row.expires_at)


class _Abandoned(Exception):
    """Raised to obstore by an abandoned write's source, so that it aborts the upload."""


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


class _Feed:
    """The source obstore pulls a write from. ``abandon`` fails the read in progress (or the
    next one), and obstore aborts the multipart upload when its source fails; a cancelled or
    dropped obstore future does not (the upload and its parts would stay in the bucket)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._reading: asyncio.Task[bytes | None] | None = None
        self._abandoned = False

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> bytes:
        if self._abandoned:
            raise _Abandoned
        reading = self._reading = asyncio.create_task(_next(self._chunks))
        try:
            chunk = await reading
        except asyncio.CancelledError:
            if self._abandoned and reading.cancelled():
                raise _Abandoned from None
            raise
        finally:
            self._reading = None
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    def abandon(self) -> None:
        self._abandoned = True
        if self._reading is not None:
            self._reading.cancel()


def _retrieve(upload: asyncio.Future[Any]) -> None:
    if not upload.cancelled():
        upload.exception()  # an abandoned write's outcome is nobody's error


async def _abandon(upload: asyncio.Future[Any], feed: _Feed, blob_id: str) -> None:
    """Stop feeding an interrupted write and wait for obstore to abort its upload. Cancelling
    again does not cut the wait short (the caller re-raises the first cancellation); the
    deadline does, since a store that cannot be reached cannot be told to abort either."""
    upload.add_done_callback(_retrieve)
    feed.abandon()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ABORT_WAIT_SECONDS
    while not upload.done() and (left := deadline - loop.time()) > 0:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([upload], timeout=left)
    if not upload.done():
        logger.warning("the upload of blob %s is not aborted yet; the stale-upload sweep will", blob_id)


class BlobStore:
    def __init__(
        self,
        database: Database,
        backend: Backend,
        signer: DownloadSigner,
        *,
        url_ttl_seconds: int,
        upload_max_age_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = database
        self._backend = backend
        self._store = backend.store
        self._signer = signer
        self._url_ttl = timedelta(seconds=url_ttl_seconds)
        self._upload_max_age = timedelta(seconds=upload_max_age_seconds)
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- writing ------------------------------------------------------------------------------

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        organization_id: str,
        content_type: str,
        expires_at: datetime,
        replace: bool = True,
    ) -> BlobRef:
        """Stream ``chunks`` into the object at ``key`` (replacing any blob already there, or, with
        ``replace=False``, raising ``BlobExists`` when there is one, even one still being written);
        memory stays bounded by the part size. However the write ends (``chunks`` raising, the
        store failing, the caller cancelled), no incomplete upload is left behind once this returns."""
        if len(key) > 512 or not _KEY.match(key) or ".." in key:
            raise InvalidRequest(f"blob key {key[:64]!r} is not a safe relative path", key="invalid_blob_key")
        try:
            async with self._db.transaction() as session:
                if replace:
                    await session.execute(delete(Blob).where(Blob.key == key))
                row = Blob(
                    key=key,
                    organization_id=organization_id,
                    content_type=content_type[:255] or "application/octet-stream",
                    expires_at=expires_at,
                )
                session.add(row)
        except IntegrityError:
            if replace:
                raise
            raise BlobExists(f"a blob is already stored at {key}") from None
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                if chunk:
                    size += len(chunk)
                    yield chunk
            if size == 0:
                yield b""  # an empty body is still an object

        feed = _Feed(counted())
        upload: asyncio.Future[Any] | None = None
        try:
            attributes = None if self._backend.local else {"Content-Type": row.content_type}
            upload = asyncio.ensure_future(
                obstore.put_async(
                    self._store,
                    key,
                    feed,
                    attributes=attributes,
                    chunk_size=PART_SIZE,
                    max_concurrency=PARTS_IN_FLIGHT,
                )
            )
            # Shielded: cancelling obstore's future would drop the upload without aborting it.
            await asyncio.shield(upload)
        except BaseException as error:
            interrupted = upload is not None and not upload.done()
            metrics.OPERATIONS.labels("write", "cancelled" if interrupted else "error").inc()
            if upload is not None and interrupted:
                await _abandon(upload, feed, row.id)
            await self._forget(row.id, key)
            if isinstance(error, ObjectStoreError):
                logger.warning("blob write failed: %s", type(error).__name__)
                raise BlobStoreUnavailable(
                    "the blob store refused the write; check KEYHOLE_BLOB_URL and its credentials"
                ) from None
            raise
        metrics.OPERATIONS.labels("write", "ok").inc()
        metrics.WRITTEN_BYTES.inc(size)
        async with self._db.transaction() as session:
            await session.execute(update(Blob).where(Blob.id == row.id).values(size=size))
        return BlobRef(row.id, key, organization_id, size, row.content_type, expires_at)

    # -- reading ------------------------------------------------------------------------------

    async def get(self, blob_id: str) -> BlobRef | None:
        """The blob, if it exists, is complete and has not expired."""
        async with self._db.session() as session:
            row = await session.get(Blob, blob_id)
        if row is None or row.size is None or row.expires_at <= self._now():
            return None
        return _ref(row)

    async def stat(self, key: str) -> BlobRef | None:
        """The blob at ``key``, if it is complete (its write finished) and has not expired."""
        async with self._db.session() as session:
            row = (await session.execute(select(Blob).where(Blob.key == key))).scalar_one_or_none()
        if row is None or row.size is None or row.expires_at <= self._now():
            return None
        return _ref(row)

    async def open_stream(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """An iterator over the object's bytes (from ``start``, up to ``end`` exclusive when given);
        raises ``Gone`` at once when it no longer exists."""
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        try:
            result = await obstore.get_async(self._store, key, options=options)
        except _MISSING:
            metrics.OPERATIONS.labels("read", "missing").inc()
            raise _gone() from None
        except ObjectStoreError:
            metrics.OPERATIONS.labels("read", "error").inc()
            raise BlobStoreUnavailable("the blob store could not be read; try again") from None
        metrics.OPERATIONS.labels("read", "ok").inc()

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=READ_CHUNK):
                yield bytes(chunk)

        return chunks()

    async def download_url(self, ref: BlobRef, base_url: str) -> tuple[str, datetime]:
        """A URL that fetches ``ref`` without any other credential, and when it stops working."""
        now = self._now()
        expires_at = min(now + self._url_ttl, ref.expires_at)
        if self._backend.local:
            token = self._signer.sign(ref.id, expires_at)
            return f"{base_url.rstrip('/')}/api/blobs/{token}", expires_at
        assert isinstance(self._store, S3Store)
        lifetime = max(expires_at - now, timedelta(seconds=1))
        url = await obstore.sign_async(self._store, "GET", ref.key, lifetime)
        return url, expires_at

    async def open_download(self, token: str) -> Download:
        """Resolve a download token: 403 when forged, 410 when expired or the blob is gone."""
        grant = self._signer.verify(token, now=self._now())
        ref = await self.get(grant.blob_id)
        if ref is None:
            raise _gone()
        return Download(ref, await self.open_stream(ref.key))

    # -- deleting -----------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        async with self._db.session() as session:
            blob_id = (await session.execute(select(Blob.id).where(Blob.key == key))).scalar_one_or_none()
        await self._forget(blob_id, key)

    async def purge_expired(self, *, batch: int = 500) -> int:
        """Delete every expired blob (object first, then row); returns how many went."""
        purged, _ = await self._purge(Blob.expires_at <= self._now(), batch=batch)
        return purged

    async def purge_organization(self, organization_id: str, *, batch: int = 500) -> int:
        """Delete every blob of an organization that is being deleted (its rows would otherwise go
        with the organization and leave the objects behind); refused (503) while any object
        cannot be deleted, so that the organization's deletion waits rather than orphans it."""
        purged, failed = await self._purge(Blob.organization_id == organization_id, batch=batch)
        if failed:
            raise BlobStoreUnavailable(
                f"{failed} stored bodies of the organization could not be deleted from the blob store "
                f"({self._backend.description}); nothing else was deleted, try again"
            )
        return purged

    async def _purge(self, which: ColumnElement[bool], *, batch: int) -> tuple[int, int]:
        """(deleted, kept because their object could not be deleted); each row is tried once."""
        purged = failed = 0
        after = ""
        while True:
            async with self._db.session() as session:
                statement = select(Blob.id, Blob.key).where(which, Blob.id > after).order_by(Blob.id)
                rows = (await session.execute(statement.limit(batch))).all()
            for blob_id, key in rows:
                if await self._forget(blob_id, key):
                    purged += 1
                else:
                    failed += 1
            if len(rows) < batch:
                return purged, failed
            after = rows[-1][0]

    async def abort_stale_uploads(self) -> int:
        """Abort the incomplete uploads of writers that died (``kill -9``, a lost machine) once
        they are older than the upload max age; returns how many went."""
        aborted = await self._backend.uploads.abort_older_than(self._now() - self._upload_max_age)
        if aborted:
            metrics.STALE_UPLOADS_ABORTED.inc(aborted)
            logger.info(
                "aborted %d incomplete blob uploads older than %d s in %s",
                aborted,
                self._upload_max_age.total_seconds(),
                self._backend.description,
            )
        return aborted

    async def _forget(self, blob_id: str | None, key: str) -> bool:
        """Delete the object, then its row; False (row kept for the next purge) when the object
        could not be deleted."""
        try:
            await obstore.delete_async(self._store, key)
        except _MISSING:
            metrics.OPERATIONS.labels("delete", "missing").inc()
        except ObjectStoreError:
            metrics.OPERATIONS.labels("delete", "error").inc()
            logger.warning("could not delete blob object %s; its row is kept for the next purge", blob_id)
            return False
        else:
            metrics.OPERATIONS.labels("delete", "ok").inc()
        if blob_id is not None:
            async with self._db.transaction() as session:
                await session.execute(delete(Blob).where(Blob.id == blob_id))
        return True
