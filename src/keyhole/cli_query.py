"""``keyhole query run``: SQL on a database connection of a Keyhole server, from a terminal.

The command is a client of the REST API like any other, holding an API key: it submits the query,
polls it while showing the rows and bytes stored so far, then either downloads the whole result
through the export endpoint into a file (written beside it under a temporary name, renamed into
place once complete) or prints its rows as NDJSON, page by page. Bars go to stderr, and only when
it is a terminal: stdout carries the rows alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from keyhole import __version__

FORMATS = ("csv", "ndjson", "parquet", "arrow")
_BY_SUFFIX = {
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".arrows": "arrow",
}
# Every request has a deadline. The server answers a poll at once, streams pages and exports
# without long pauses, and answers a cancel within 10 s (it waits for the statement to stop).
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
CANCEL_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
FIRST_POLL_SECONDS = 0.1
POLL_SECONDS = 1.0  # the server records a running query's progress once a second
CHUNK_BYTES = 256 * 1024
INTERRUPTED = 130


class QueryRunFailed(Exception):
    """The command stops: ``code`` is its exit status (1: the server refused or the query failed,
    2: the arguments cannot run, 130: interrupted)."""

    def __init__(self, message: str, code: int = 1, *, key: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.key = key  # the server's error key, when it answered one


@dataclass(frozen=True, slots=True)
class QueryRun:
    url: str
    api_key: str
    connection_id: str
    sql: str
    output: Path | None
    format: str | None  # of the file: csv, ndjson, parquet, arrow (None: from its extension)
    timeout: float | None  # seconds the query may take before it is cancelled


def read_sql(sql: str | None, sql_file: str | None) -> str:
    """The SQL of ``--sql`` or of ``--sql-file``; ``-`` reads it from stdin."""
    if (sql is None) == (sql_file is None):
        raise QueryRunFailed("pass the SQL with either --sql or --sql-file", 2)
    if sql is not None:
        return sys.stdin.read() if sql == "-" else sql
    assert sql_file is not None
    if sql_file == "-":
        return sys.stdin.read()
    try:
        return Path(sql_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise QueryRunFailed(f"cannot read --sql-file {sql_file}: {reason}", 2) from None


def output_format(output: Path | None, given: str | None) -> str | None:
    """The export format of ``output``: ``given``, or told by its extension."""
    if output is None:
        if given is not None:
            raise QueryRunFailed(
                "--format names the format of the --output file; without --output the rows are "
                "printed as NDJSON",
                2,
            )
        return None
    if given is not None:
        return given
    known = _BY_SUFFIX.get(output.suffix.lower())
    if known is None:
        raise QueryRunFailed(
            f"cannot tell the format of {output.name} from its extension: pass --format "
            f"({', '.join(FORMATS)}) or name the file {', '.join(_BY_SUFFIX)}",
            2,
        )
    return known


def run(job: QueryRun) -> None:
    started = time.monotonic()
    export_format = output_format(job.output, job.format)
    terminal = sys.stderr.isatty()
    with _failures(job.url), _client(job.url, job.api_key) as http:
        if job.output is None or export_format is None:
            page = _wait(http, _submit(http, job.connection_id, job.sql), job.timeout, terminal)
            count = _print_rows(http, page)
            where = "printed"
        else:
            with _partial_file(job.output) as part:
                query_id = _submit(http, job.connection_id, job.sql)
                page = _wait(http, query_id, job.timeout, terminal)
                size = _download(http, query_id, export_format, part, terminal)
                part.close()
                os.replace(part.name, job.output)
            count = int(page["data"].get("count") or 0)
            where = f"({decimal(size)}) written to {job.output}"
    cut = "; a row or byte limit of the connection cut it short" if page["data"].get("truncated") else ""
    seconds = time.monotonic() - started
    _note(f"{count:,} row{'' if count == 1 else 's'} {where} in {seconds:.1f} s{cut}")


@contextlib.contextmanager
def _failures(url: str) -> Iterator[None]:
    """Ctrl-C and the network's failures, as one line each."""
    try:
        yield
    except KeyboardInterrupt:
        raise QueryRunFailed("interrupted", INTERRUPTED) from None
    except httpx.TimeoutException as error:
        raise QueryRunFailed(
            f"the Keyhole server at {url} did not answer in time ({type(error).__name__})"
        ) from None
    except httpx.TransportError as error:
        raise QueryRunFailed(
            f"the Keyhole server at {url} cannot be reached ({type(error).__name__}: {error}); "
            "check that it runs and that KEYHOLE_URL names it"
        ) from None
    except httpx.HTTPError as error:
        raise QueryRunFailed(f"the Keyhole server at {url} answered unreadably ({error})") from None
    except httpx.InvalidURL as error:
        raise QueryRunFailed(f"KEYHOLE_URL {url!r} is not a URL: {error}", 2) from None


# -- the server ----------------------------------------------------------------------------------


def _client(url: str, api_key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {api_key}", "User-Agent": f"keyhole-cli/{__version__}"}
    return httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT)


def _answer(response: httpx.Response) -> dict[str, Any]:
    """A 200's JSON object; any other answer becomes the server's own error message."""
    body = _body(response)
    if response.status_code == 200 and isinstance(body, dict):
        return body
    raise _refusal(response, body)


def _body(response: httpx.Response) -> Any:
    response.read()
    try:
        return response.json()
    except ValueError:
        return None


def _refusal(response: httpx.Response, body: Any) -> QueryRunFailed:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        key = body.get("key") if isinstance(body.get("key"), str) else None
        return QueryRunFailed(f"{key}: {body['message']}" if key else body["message"], key=key)
    request = response.request
    return QueryRunFailed(f"HTTP {response.status_code} from {request.method} {request.url.path}")


def _submit(http: httpx.Client, connection_id: str, sql: str) -> str:
    path = f"/api/connections/{quote(connection_id, safe='')}/query"
    body = _answer(http.post(path, json={"query": sql}))
    query_id = body.get("data", {}).get("id")
    if not isinstance(query_id, str):
        raise QueryRunFailed(f"the server's answer to POST {path} names no query")
    return query_id


def _poll(http: httpx.Client, query_id: str) -> dict[str, Any]:
    return _answer(http.get(f"/api/queries/{quote(query_id, safe='')}"))


def _cancel(http: httpx.Client, query_id: str) -> str:
    """Cancel the query; what became of it, in words."""
    try:
        _answer(http.delete(f"/api/queries/{quote(query_id, safe='')}", timeout=CANCEL_TIMEOUT))
    except QueryRunFailed as error:
        if error.key == "query_finished":
            return f"query {query_id} finished before its cancel arrived"
        return f"query {query_id} may still be running: its cancel failed ({error})"
    except (httpx.HTTPError, KeyboardInterrupt) as error:
        return f"query {query_id} may still be running: its cancel failed ({type(error).__name__})"
    return f"query {query_id} was cancelled"


# -- waiting -------------------------------------------------------------------------------------


def _wait(http: httpx.Client, query_id: str, timeout: float | None, terminal: bool) -> dict[str, Any]:
    """The first page once the query is done; Ctrl-C or ``timeout`` cancels it on the server."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = FIRST_POLL_SECONDS
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=_stderr(), transient=True, disable=not terminal) as bar:
        task = bar.add_task("queued", total=None)
        try:
            while True:
                page = _poll(http, query_id)
                data = page.get("data", {})
                status = data.get("status")
                if status == "done":
                    return page
                if status == "failed":
                    raise QueryRunFailed(f"query_failed: {data.get('error')}")
                bar.update(task, description=_shown(status, data.get("progress")))
                if deadline is not None and time.monotonic() >= deadline:
                    raise QueryRunFailed(
                        f"query_timeout: not finished after {timeout:g} s; {_cancel(http, query_id)}"
                    )
                time.sleep(pause if deadline is None else max(min(pause, deadline - time.monotonic()), 0))
                pause = min(pause * 2, POLL_SECONDS)
        except KeyboardInterrupt:
            raise QueryRunFailed(f"interrupted: {_cancel(http, query_id)}", INTERRUPTED) from None


def _shown(status: Any, progress: Any) -> str:
    """``running · 1,044 rows · 8.4 MB · 2.7 s``; ``queued`` before the query starts."""
    if status != "running":
        return "queued"
    if not isinstance(progress, dict):
        return "running"
    rows = int(progress.get("rows", 0))
    size = decimal(int(progress.get("bytes", 0)))
    elapsed = _duration(float(progress.get("elapsed_seconds", 0.0)))
    return f"running · {rows:,} row{'' if rows == 1 else 's'} · {size} · {elapsed}"


def _duration(seconds: float) -> str:
    """``4.2 s``, ``2:05``, ``1:02:05``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    hours, rest = divmod(int(seconds), 3600)
    minutes, rest = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


# -- the result ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _partial_file(output: Path) -> Iterator[IO[bytes]]:
    """A temporary file beside ``output`` (so the rename stays on one file system), removed
    unless it was renamed into place; made before the query runs, so a place that cannot be
    written is known before any work."""
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed and removed below
            dir=output.parent, prefix=f".{output.name}.", suffix=".part", delete=False
        )
    except OSError as error:
        raise QueryRunFailed(f"cannot write {output}: {error.strerror}", 2) from None
    try:
        yield handle
    finally:
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)


def _download(http: httpx.Client, query_id: str, export_format: str, part: IO[bytes], terminal: bool) -> int:
    """The whole result into ``part``, a chunk at a time; its size."""
    path = f"/api/queries/{quote(query_id, safe='')}/export"
    with http.stream("GET", path, params={"format": export_format}) as response:
        if response.status_code != 200:
            raise _refusal(response, _body(response))
        length = response.headers.get("content-length")
        columns = (
            TextColumn("downloading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        size = 0
        with Progress(*columns, console=_stderr(), transient=True, disable=not terminal) as bar:
            task = bar.add_task("", total=int(length) if length and length.isdigit() else None)
            for chunk in response.iter_bytes(CHUNK_BYTES):
                part.write(chunk)
                size += len(chunk)
                bar.update(task, completed=size)
    part.flush()
    os.fsync(part.fileno())
    return size


def _print_rows(http: httpx.Client, page: dict[str, Any]) -> int:
    """Every row as one JSON line on stdout, following ``links.next``; how many."""
    count = 0
    try:
        while True:
            rows = page.get("data", {}).get("results") or []
            sys.stdout.buffer.write(b"".join(_json_line(row) for row in rows))
            count += len(rows)
            following = (page.get("links") or {}).get("next")
            if not following:
                sys.stdout.buffer.flush()
                return count
            if not str(following).startswith("/api/queries/"):  # the key goes to this server only
                raise QueryRunFailed(f"the server's next page is not one of its own: {following}")
            page = _answer(http.get(following))
    except BrokenPipeError:  # the reader stopped early (`| head`): no more rows are wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return count


def _json_line(row: Any) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _stderr() -> Console:
    return Console(stderr=True)


def _note(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
