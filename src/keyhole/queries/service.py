"""The query runner: submit, run (as a job), read pages, cancel, expire.

States: ``created`` → ``running`` → ``done`` | ``failed``. The query row is the truth; the job
system only decides which worker runs it. Results belong to the principal who submitted the
query (``Principal.id``: the user, or ``org:<id>`` for an organization key): anyone else,
inside the organization or not, gets the same 404 as for a query that never existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from keyhole.blobs import BlobStore
from keyhole.connections.schemas import ConnectionLabel
from keyhole.connections.service import ConnectionService
from keyhole.egress import EgressClient
from keyhole.errors import Conflict, Gone, InvalidRequest, KeyholeError, NotFound
from keyhole.jobs.queues import QUERIES_QUEUE
from keyhole.jobs.service import JobService
from keyhole.queries import export_copies, exports, orphans
from keyhole.queries.engines import QueryEngines
from keyhole.queries.execution import CANCELLED, Control, QueryFailed, QueryLimits, run_statement
from keyhole.queries.exports import Export, StoredResult, csv_export
from keyhole.queries.kinds import TEXT
from keyhole.queries.models import Query
from keyhole.queries.page_tokens import PageTokens, invalid_token
from keyhole.queries.pages import BlobPages, page_rows
from keyhole.queries.repository import TERMINAL, QueryRepository
from keyhole.queries.stored_columns import BlobColumns
from keyhole.queries.tasks import QUERY_JOB, QueryJob
from keyhole.settings import Settings
from keyhole.store.base import new_id, utcnow
from keyhole.store.database import Database
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp
from keyhole.vault import Vault

logger = logging.getLogger(__name__)

# A query still ``created`` this long after its submit whose job does not exist was never queued.
UNQUEUED_AFTER = timedelta(seconds=30)
UNQUEUED_MESSAGE = (
    "the server stopped while submitting this query, before it was queued; nothing ran: submit it again"
)

MAX_SQL_CHARACTERS = 1_000_000
CANCEL_WAIT_SECONDS = 10.0
PROGRESS_EVERY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class QuerySettings:
    result_ttl_seconds: int
    expired_notice_seconds: int
    page_rows: int
    page_bytes: int
    cancel_poll_seconds: float


@dataclass(frozen=True, slots=True)
class QueryProgress:
    rows: int
    bytes: int  # of row JSON
    elapsed_seconds: float


@dataclass(frozen=True, slots=True)
class QueryView:
    id: str
    status: str
    fields: list[str] | None
    field_kinds: list[str] | None  # once done, one per field (``queries/kinds.py``)
    count: int | None
    rows_so_far: int  # stored so far while running; the count once done
    bytes_so_far: int  # bytes of row JSON stored so far while running; the total once done
    expires_at: datetime
    error: str | None
    error_key: str | None
    truncated: bool
    pages: int
    connection_id: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """Done or failed (a cancelled query is failed): its status changes no more."""
        return self.status in TERMINAL

    def progress(self, now: datetime) -> QueryProgress | None:
        """What a running or done query has stored, and for how long it has run (to the
        millisecond); None while it waits and once it failed, its stored rows being deleted."""
        elapsed = self.elapsed_seconds(now)
        if self.status not in ("running", "done") or elapsed is None:
            return None
        return QueryProgress(self.rows_so_far, self.bytes_so_far, round(elapsed, 3))

    def elapsed_seconds(self, now: datetime) -> float | None:
        """How long it has run: from its start until it finished, or until ``now`` while it runs;
        None before it started (still queued, or cancelled while queued)."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished and self.finished_at is not None else now
        return max((end - self.started_at).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One page of a finished query (``results`` is None until the query is done)."""

    view: QueryView
    number: int
    results: AsyncIterator[bytes] | None
    next_token: str | None
    previous_token: str | None


def _view(row: Query) -> QueryView:
    done = row.status == "done"
    return QueryView(
        id=row.id,
        status=row.status,
        fields=list(row.fields or []) if done else None,
        field_kinds=_field_kinds(row) if done else None,
        count=row.row_count if done else None,
        rows_so_far=row.row_count,
        bytes_so_far=row.byte_count,
        expires_at=row.expires_at,
        error=row.error,
        error_key=row.error_key,
        truncated=row.truncated,
        pages=row.page_count,
        connection_id=row.connection_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _field_kinds(row: Query) -> list[str]:
    """A query finished before kinds were recorded has text columns only."""
    fields = row.fields or []
    kinds = list(row.field_kinds or [])
    return kinds if len(kinds) == len(fields) else [TEXT] * len(fields)


def _not_found(query_id: str) -> NotFound:
    return NotFound("query not found", key="query_not_found", metadata={"id": query_id[:64]})


def _expired(row: Query) -> Gone:
    return Gone(
        f"the results of query {row.id} expired at {timestamp(row.expires_at)} and were deleted; "
        "run the query again to get fresh results",
        key="query_expired",
        metadata={"id": row.id, "expires": timestamp(row.expires_at)},
    )


def _results_missing(row: Query) -> Gone:
    return Gone(
        f"the results of query {row.id} are no longer stored (deleted from the blob store); run "
        "the query again",
        key="query_results_missing",
        metadata={"id": row.id},
    )


def _not_done(row: Query) -> Conflict:
    if row.status == "failed":
        message = f"query {row.id} failed, so it has no results: {row.error}"
    else:
        message = f"query {row.id} is still {row.status}; its results can be read once it is done"
    return Conflict(message, key="query_not_done", metadata={"status": row.status})


async def _empty_page() -> AsyncIterator[bytes]:
    yield b"[]"


class _Progress:
    """Writes a running query's rows and bytes so far to its row, at most once per
    ``PROGRESS_EVERY_SECONDS`` (pages can be many per second)."""

    def __init__(self, rows: QueryRepository, query_id: str, attempt: int) -> None:
        self._rows = rows
        self._query_id = query_id
        self._attempt = attempt
        self._last = time.monotonic()

    async def record(self, row_count: int, byte_count: int) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_SECONDS:
            return
        self._last = now
        await self._rows.record_progress(
            self._query_id, attempt=self._attempt, row_count=row_count, byte_count=byte_count
        )


class QueryService:
    def __init__(
        self,
        database: Database,
        connections: ConnectionService,
        engines: QueryEngines,
        tokens: PageTokens,
        settings: QuerySettings,
        *,
        jobs: JobService,
        blobs: BlobStore,
    ) -> None:
        self._rows = QueryRepository(database)
        self._connections = connections
        self.engines = engines
        self._tokens = tokens
        self._settings = settings
        self._jobs = jobs
        self._blobs = blobs
        self._controls: dict[str, Control] = {}

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        connections: ConnectionService,
        egress: EgressClient,
        vault: Vault,
        *,
        jobs: JobService,
        blobs: BlobStore,
    ) -> QueryService:
        """The service wired to the job system (``query`` jobs, expiry purger) and to connection
        changes (a changed or deleted connection's pool is disposed)."""
        engines = QueryEngines(
            egress.resolver,
            settings.resolved_sql_file_root,
            pool_size=settings.query_pool_size,
            connect_timeout=settings.query_connect_timeout_seconds,
            columnar=settings.query_columnar,
        )
        service = cls(
            database,
            connections,
            engines,
            PageTokens(vault.keyring),
            QuerySettings(
                result_ttl_seconds=settings.query_result_ttl_seconds,
                expired_notice_seconds=settings.query_expired_notice_seconds,
                page_rows=settings.query_page_rows,
                page_bytes=settings.query_page_bytes,
                cancel_poll_seconds=settings.query_cancel_poll_seconds,
            ),
            jobs=jobs,
            blobs=blobs,
        )
        connections.on_change(engines.forget)
        handler = QueryJob(service)
        jobs.registry.register(QUERY_JOB, handler, queue=QUERIES_QUEUE)
        jobs.maintenance.on_lease_lost(QUERY_JOB, handler.lease_lost)
        jobs.maintenance.add_purger("queries", service.purge_expired)
        jobs.maintenance.add_purger("queries_unqueued", service.fail_unqueued)
        return service

    # -- submitting ----------------------------------------------------------------------------

    async def submit(
        self, principal: Principal, connection_id: str, sql: str | None, *, read_only: bool = False
    ) -> QueryView:
        """Queue ``sql``; ``read_only`` runs it read-only even on a connection that allows writes
        (a connection that is read-only always runs its queries so)."""
        if sql is None or not sql.strip():
            raise InvalidRequest(
                'the query is empty: pass the SQL as ?query=… (or {"query": "…"} in the body)',
                key="query_missing",
                metadata={"field": "query"},
            )
        if len(sql) > MAX_SQL_CHARACTERS:
            raise InvalidRequest(
                f"the query is longer than {MAX_SQL_CHARACTERS} characters", key="query_too_long"
            )
        if "\x00" in sql:
            raise InvalidRequest("the query contains a NUL character", key="invalid_query")
        _, configuration = await self._sql_connection(principal.organization_id, connection_id)
        limits = QueryLimits.from_configuration(configuration)
        now = utcnow()
        row = Query(
            id=new_id(),
            organization_id=principal.organization_id,
            connection_id=connection_id,
            owner_id=principal.id,
            status="created",
            row_count=0,
            byte_count=0,
            page_count=0,
            truncated=False,
            attempt=0,
            read_only=limits.read_only or read_only,
            cancel_requested=False,
            created_at=now,
            expires_at=now + timedelta(seconds=self._settings.result_ttl_seconds),
        )
        # The job's id is in the row before the job exists: a process killed between the two
        # writes leaves a query whose job is missing, which `fail_unqueued` finds.
        row.job_id = new_id()
        await self._rows.add(row)
        try:
            await self._jobs.submit(principal, QUERY_JOB, {"query_id": row.id, "sql": sql}, job_id=row.job_id)
        except BaseException:
            await self._rows.delete(row.id)
            raise
        return _view(row)

    # -- reading -------------------------------------------------------------------------------

    async def settled(self, principal: Principal, query_id: str, *, within_seconds: float) -> QueryView:
        """The query once it is done or failed, or as it is after ``within_seconds``."""
        deadline = time.monotonic() + within_seconds
        pause = 0.02
        while True:
            row = await self._unexpired(principal, query_id)
            remaining = deadline - time.monotonic()
            if row.status in TERMINAL or remaining <= 0:
                return _view(row)
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.25)

    async def read(self, principal: Principal, query_id: str, page_token: str | None) -> QueryPage:
        row = await self._unexpired(principal, query_id)
        number = self._tokens.verify(row.id, page_token) if page_token else 0
        view = _view(row)
        if row.status != "done":
            if number:
                raise invalid_token()
            return QueryPage(view, 0, None, None, None)
        if number >= max(row.page_count, 1):
            raise invalid_token()
        if row.page_count == 0:
            results = _empty_page()
        else:
            try:
                results = await self._pages(row, row.attempt).open(number)
            except Gone:
                raise _results_missing(row) from None
        return QueryPage(
            view,
            number,
            results,
            self._tokens.sign(row.id, number + 1) if number + 1 < row.page_count else None,
            self._tokens.sign(row.id, number - 1) if number > 0 else None,
        )

    async def recent(
        self, principal: Principal, *, limit: int = 20, unfinished_only: bool = False
    ) -> list[QueryView]:
        """The caller's own queries whose results have not expired, newest first."""
        rows = await self._rows.list_owned(
            principal.organization_id,
            principal.id,
            now=utcnow(),
            limit=limit,
            unfinished_only=unfinished_only,
        )
        return [_view(row) for row in rows]

    async def sql_connections(self, principal: Principal) -> list[ConnectionLabel]:
        """The connections of the caller's organization that can run SQL, by name (no
        configuration is read, so no secret is opened)."""
        return [label for label in await self._connections.labels(principal) if label.type.kind == "sql"]

    # -- whole results -------------------------------------------------------------------------

    async def stored_result(self, principal: Principal, query_id: str) -> StoredResult:
        """Every stored page of a finished query, read one page at a time (for exports): only its
        owner's, and only until it expires, like ``read``."""
        return self._stored_result(await self._done(principal, query_id))

    async def export(
        self,
        principal: Principal,
        query_id: str,
        format: str | None,
        *,
        neutralise_formulas: bool = False,
        bom: bool = False,
    ) -> Export:
        """The whole result as one file in ``format`` (see ``queries/exports.py``), checked before
        the query is read. The file is made once and stored with the pages; later downloads read
        the stored copy, with its size and byte ranges (``queries/export_copies.py``). The CSV
        opt-ins make another file, which is streamed only. The caller closes ``chunks`` (``aclose``)
        when it stops reading early, which deletes a copy still being written."""
        chosen = exports.export_format(format)
        row = await self._done(principal, query_id)
        made = exports.export(
            self._stored_result(row), chosen, neutralise_formulas=neutralise_formulas, bom=bom
        )
        if neutralise_formulas or bom:
            return made
        return await export_copies.served(
            self._blobs,
            made,
            export_copies.export_key(row.id, row.attempt, chosen),
            organization_id=row.organization_id,
            expires_at=row.expires_at,
            expired=lambda: _expired(row),
            missing=lambda: _results_missing(row),
        )

    async def export_csv(
        self, principal: Principal, query_id: str, *, neutralise_formulas: bool = False, bom: bool = False
    ) -> Export:
        """The whole result as one streamed CSV file (see ``queries/exports.py``)."""
        result = await self.stored_result(principal, query_id)
        return csv_export(result, neutralise_formulas=neutralise_formulas, bom=bom)

    async def _done(self, principal: Principal, query_id: str) -> Query:
        row = await self._unexpired(principal, query_id)
        if row.status != "done":
            raise _not_done(row)
        return row

    def _stored_result(self, row: Query) -> StoredResult:
        view = _view(row)
        if not row.column_batches:
            return StoredResult(view, self._each_page(row))
        schema = exports.export_schema(view.fields or [], view.field_kinds or [])
        return StoredResult(view, self._each_page(row), batches=lambda: self._each_batch(row, schema))

    async def _each_batch(self, row: Query, schema: pa.Schema) -> AsyncIterator[pa.RecordBatch]:
        """The stored columns of a columnar run, in the export schema (``queries/stored_columns.py``)."""
        batches = self._columns(row, row.attempt).read(row.column_batches, schema)
        while True:
            if row.expires_at <= utcnow():  # expired during a long download: stop, as a read would
                raise _expired(row)
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                return
            except Gone:
                raise _results_missing(row) from None
            yield batch

    async def _each_page(self, row: Query) -> AsyncIterator[list[dict[str, Any]]]:
        pages = self._pages(row, row.attempt)
        for number in range(row.page_count):
            if row.expires_at <= utcnow():  # expired during a long download: stop, as a read would
                raise _expired(row)
            try:
                chunks = await pages.open(number)
            except Gone:
                raise _results_missing(row) from None
            yield await page_rows(chunks)

    # -- cancelling ----------------------------------------------------------------------------

    async def cancel(self, principal: Principal, query_id: str) -> QueryView:
        """Cancel at the database; the query ends ``failed`` with error ``cancelled``."""
        row = await self._unexpired(principal, query_id)
        if row.status in TERMINAL:
            if row.error_key == CANCELLED:
                return _view(row)
            raise Conflict(
                f"query {row.id} already finished ({row.status}); there is nothing to cancel",
                key="query_finished",
                metadata={"status": row.status},
            )
        await self._rows.request_cancel(row.id)
        # Not started yet: it ends here and the worker will skip it.
        await self._rows.finish_failed(row.id, CANCELLED, CANCELLED, only_status="created")
        control = self._controls.get(row.id)
        if control is not None:
            control.cancel(CANCELLED)
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while True:
            current = await self._rows.get(row.id)
            if current is None:
                raise _not_found(query_id)
            if current.status in TERMINAL or time.monotonic() > deadline:
                return _view(current)
            await asyncio.sleep(0.05)

    # -- running (called by the job handler) ---------------------------------------------------

    async def run(self, query_id: str, sql: str, *, job_attempt: int) -> dict[str, Any]:
        """Run attempt ``job_attempt`` (the job's, which tags the statement on the database)."""
        row = await self._rows.get(query_id)
        if row is None or row.status in TERMINAL:
            return {"query_id": query_id, "skipped": True}
        if row.status == "running":
            # An earlier attempt died mid-run, and its statement may still be running: it goes
            # before this one starts. A read-only query is then simply run again; one that may
            # write is not, since nobody can tell what it did.
            await self.cancel_orphans(row.id, through_attempt=job_attempt - 1)
            if not row.read_only:
                await self._rows.finish_failed(
                    row.id,
                    "the worker running this query stopped before it finished; it was not run "
                    "again because the connection is not read-only. Check the database, then "
                    "submit it again",
                    "worker_lost",
                )
                return {"query_id": query_id, "skipped": True}
        attempt = row.attempt + 1
        if not await self._rows.claim(row.id, attempt=attempt):
            current = await self._rows.get(query_id)
            if current is not None and current.status not in TERMINAL and current.cancel_requested:
                await self._rows.finish_failed(query_id, CANCELLED, CANCELLED)
            return {"query_id": query_id, "skipped": True}
        control = Control()
        self._controls[query_id] = control
        try:
            return await self._execute(row, attempt, sql, control, orphans.attempt_tag(row.id, job_attempt))
        finally:
            self._controls.pop(query_id, None)

    async def _execute(
        self, row: Query, attempt: int, sql: str, control: Control, tag: str
    ) -> dict[str, Any]:
        try:
            dialect, configuration = await self._sql_connection(row.organization_id, row.connection_id)
        except NotFound:
            failure = QueryFailed(
                "the query's connection was deleted before the query ran", key="connection_gone"
            )
            await self._rows.finish_failed(row.id, failure.message, failure.key, attempt=attempt)
            raise failure from None
        limits = QueryLimits.from_configuration(configuration)
        if row.read_only and not limits.read_only:  # submitted read-only: it stays so
            limits = dataclasses.replace(limits, read_only=True)
        pool = self.engines.pool(row.connection_id, dialect, configuration)
        sink = self._pages(row, attempt)
        columns = self._columns(row, attempt)

        async def cancel_requested() -> bool:
            current = await self._rows.get(row.id)
            return current is None or current.cancel_requested or current.status in TERMINAL

        # A QueryFailed is recorded by ``job_failed``, which only the attempt still holding the
        # job's lease reaches: the statement of an attempt whose lease was taken is cancelled as
        # an orphan, and that cancel must not fail the query its retry is about to run.
        summary = await run_statement(
            lambda: pool.session(limits, tag),
            sql,
            sink,
            limits=limits,
            page_rows=self._settings.page_rows,
            page_bytes=self._settings.page_bytes,
            control=control,
            describe_error=pool.describe_error,
            cancel_poll_seconds=self._settings.cancel_poll_seconds,
            cancel_check=cancel_requested,
            progress=_Progress(self._rows, row.id, attempt).record,
            columns=columns,
        )
        finished = await self._rows.finish_done(
            row.id,
            attempt=attempt,
            fields=summary.fields,
            field_kinds=summary.kinds,
            row_count=summary.count,
            byte_count=summary.bytes,
            page_count=summary.pages,
            column_batches=summary.column_batches,
            truncated=summary.truncated,
            read_only=limits.read_only,
        )
        if not finished:  # cancelled or expired meanwhile: drop the pages
            with contextlib.suppress(Exception):
                await sink.discard(summary.pages)
                await columns.discard()
            return {"query_id": row.id, "skipped": True}
        return {
            "query_id": row.id,
            "count": summary.count,
            "pages": summary.pages,
            "truncated": summary.truncated,
            "columnar": summary.columnar,
        }

    async def job_failed(self, query_id: str, message: str, key: str) -> None:
        """The job ended failed (the statement failed, the worker was lost, a crash): the query
        fails too."""
        await self._rows.finish_failed(query_id, message, key)

    async def cancel_orphans(self, query_id: str, *, through_attempt: int) -> None:
        """Stop what job attempts 1…``through_attempt`` of the query left running on the database
        when their worker died, with the connection's own credentials (see ``queries/orphans.py``)."""
        row = await self._rows.get(query_id)
        if row is None:
            return
        try:
            dialect, configuration = await self._sql_connection(row.organization_id, row.connection_id)
        except KeyholeError as error:  # e.g. the connection was deleted: no credentials to cancel with
            logger.warning("cannot cancel the orphaned statements of query %s: %s", row.id, error.message)
            return
        pool = self.engines.pool(row.connection_id, dialect, configuration)
        await orphans.cancel_orphans(pool, row.id, through_attempt=through_attempt)

    async def fail_unqueued(self) -> int:
        """Fail queries left ``created`` without a job by a process that stopped between writing
        the query and its job; returns how many."""
        candidates = await self._rows.created_before(utcnow() - UNQUEUED_AFTER)
        queued = await self._jobs.existing([job_id for _, job_id in candidates if job_id])
        failed = 0
        for query_id, job_id in candidates:
            if job_id in queued:
                continue
            unqueued = await self._rows.finish_failed(
                query_id, UNQUEUED_MESSAGE, "worker_lost", only_status="created"
            )
            failed += int(unqueued)
        return failed

    # -- expiry --------------------------------------------------------------------------------

    async def purge_expired(self, *, batch: int = 200) -> int:
        """Delete the pages of expired queries (their rows stay to answer 410 for a while), cancel
        expired queries still running, and delete rows past the 410 notice period."""
        now = utcnow()
        purged = 0
        for query_id in await self._rows.expire(now):
            await self._rows.finish_failed(
                query_id, "cancelled: the query's results expired before it ran", CANCELLED
            )
        for query_id, control in list(self._controls.items()):
            current = await self._rows.get(query_id)
            if current is not None and current.expires_at <= now:
                control.cancel("expired")
        while True:
            rows = await self._rows.expired_unpurged(now, limit=batch)
            for row in rows:
                if row.page_count:
                    await self._pages(row, row.attempt).discard(row.page_count)
                await self._rows.mark_purged(row.id)
            purged += len(rows)
            if len(rows) < batch:
                break
        await self._rows.forget(now - timedelta(seconds=self._settings.expired_notice_seconds))
        self.engines.retire_idle()
        return purged

    # -- lifecycle -----------------------------------------------------------------------------

    async def close(self) -> None:
        for control in list(self._controls.values()):
            control.cancel("shutdown")
        await self.engines.close()

    # -- helpers -------------------------------------------------------------------------------

    def _columns(self, row: Query, attempt: int) -> BlobColumns:
        return BlobColumns(
            self._blobs, row.id, attempt, organization_id=row.organization_id, expires_at=row.expires_at
        )

    def _pages(self, row: Query, attempt: int) -> BlobPages:
        return BlobPages(
            self._blobs, row.id, attempt, organization_id=row.organization_id, expires_at=row.expires_at
        )

    async def _sql_connection(
        self, organization_id: str, connection_id: str
    ) -> tuple[str, Mapping[str, Any]]:
        principal = Principal(
            organization_id=organization_id, key_id="query-runner", kind="org", user_id=None
        )
        connection_type, configuration = await self._connections.configuration(principal, connection_id)
        if connection_type.sql is None:
            raise InvalidRequest(
                f"connection {connection_id} is a {connection_type.id} connection; the query runner "
                "runs SQL on postgresql, mysql, sqlite and duckdb connections",
                key="query_not_supported",
            )
        return connection_type.sql.dialect, configuration

    async def _unexpired(self, principal: Principal, query_id: str) -> Query:
        """The caller's own query while its results are kept: 404 for anyone else's (or none),
        410 once they expired."""
        try:
            uuid.UUID(query_id)
        except ValueError:
            raise _not_found(query_id) from None
        row = await self._rows.get_owned(principal.organization_id, principal.id, query_id)
        if row is None:
            raise _not_found(query_id)
        if self._is_expired(row):
            raise _expired(row)
        return row

    @staticmethod
    def _is_expired(row: Query) -> bool:
        return row.purged_at is not None or row.expires_at <= utcnow()
