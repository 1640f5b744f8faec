"""The Queries pages over HTTP: a query run from the editor, its grid paged with the REST API's own
page tokens, its whole result as CSV, cancel that stops the statement on the database, and a
query nobody but its owner sees, until it expires."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from conftest import KeyholeServer
from keyhole.api.console.queries import connection_names
from keyhole.connections.schemas import ConnectionLabel
from keyhole.connections.service import ConnectionService
from keyhole.connections.type_files import load_catalog
from keyhole.queries import QueryService
from keyhole.services import Services
from keyhole.tenancy.principal import Principal

from .conftest import ConsoleServer
from .support import SAME_ORIGIN, ConsoleClient, sign_in

ROWS = 60  # three stored pages of 25, 25 and 10 rows
LONG = "long text " * 30
SLOW_SQLITE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
ITEMS = "SELECT id, name, note, price, big, flag FROM items ORDER BY id"
_QUERY_PATH = re.compile(r"^/console/queries/([0-9a-f-]{36})$")
_WAIT_SECONDS = 60
DASH = "\N{EN DASH}"


def _name(i: int) -> str:
    """Names that put CSV quoting and spreadsheet formulas to the test."""
    return {
        1: "=HYPERLINK(1)",
        2: 'a "quoted", comma',
        3: "two\r\nlines",
        4: "ünïcödé ✓",
        5: "-5",
        6: "@sum",
        7: "",
        8: LONG,
    }.get(i, f"item {i}")


@dataclass
class Warehouse:
    connection_id: str
    path: Path


def _rest(server: ConsoleServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def create_connection(server: ConsoleServer, body: dict[str, Any]) -> str:
    with _rest(server, server.acme.user_api_key) as rest:
        created = rest.post("/api/connections", json=body)
    assert created.status_code == 200, created.text
    return str(created.json()["data"]["id"])


def sqlite_warehouse(server: ConsoleServer, *, writable: bool = False) -> Warehouse:
    """A SQLite file under the server's SQL root, with ``ROWS`` items and an empty ``sink``, and
    acme's connection to it (read-only unless ``writable``)."""
    name = f"console-{uuid.uuid4().hex[:8]}"
    path = server.sql_root / f"{name}.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE items (id INTEGER, name TEXT, note TEXT, price REAL, big INTEGER, flag BOOLEAN)"
        )
        db.execute("CREATE TABLE sink (n INTEGER)")
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)",
            [
                (i, _name(i), None if i % 3 == 0 else ("" if i % 3 == 1 else "x"), i / 4, 2**60 + i, i % 2)
                for i in range(1, ROWS + 1)
            ],
        )
    configuration: dict[str, Any] = {"path": path.name}
    if writable:
        configuration["query"] = {"read_only": False}
    return Warehouse(
        create_connection(server, {"name": name, "type": "sqlite", "configuration": configuration}), path
    )


@pytest.fixture(scope="module")
def warehouse(console_server: ConsoleServer) -> Warehouse:
    return sqlite_warehouse(console_server)


@pytest.fixture(scope="module")
def acme(console_server: ConsoleServer) -> Iterator[ConsoleClient]:
    client = sign_in(console_server.url, console_server.acme.user_api_key)
    yield client
    client.http.close()


@pytest.fixture(scope="module")
def rest(console_server: ConsoleServer) -> Iterator[httpx.Client]:
    with _rest(console_server, console_server.acme.user_api_key) as client:
        yield client


def submit(client: ConsoleClient, connection_id: str, sql: str) -> str:
    """Run ``sql`` from the editor's form; the id of the query it created."""
    answer = client.post("/console/queries", {"connection_id": connection_id, "sql": sql})
    assert answer.status_code == 303, answer.text
    found = _QUERY_PATH.match(answer.headers["location"])
    assert found is not None, answer.headers["location"]
    return found.group(1)


def wait_finished(client: ConsoleClient, query_id: str) -> None:
    """Poll the status fragment as the page does, until it stops asking to be polled."""
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        fragment = client.get(f"/console/queries/{query_id}/status")
        assert fragment.status_code == 200, fragment.text
        if "data-poll" not in fragment.text:
            assert "data-reload" in fragment.text
            return
        assert time.monotonic() < deadline, f"query {query_id} never finished"
        time.sleep(0.05)


def run(client: ConsoleClient, connection_id: str, sql: str) -> str:
    query_id = submit(client, connection_id, sql)
    wait_finished(client, query_id)
    return query_id


@dataclass
class Grid:
    header: list[str]
    rows: list[list[str | None]]  # None: the cell shows NULL
    numeric: list[list[bool]]
    folded: list[list[bool]]


class _GridParser(HTMLParser):
    """The result grid as the page shows it (a folded cell reads as its whole text)."""

    def __init__(self) -> None:
        super().__init__()
        self.grid = Grid([], [], [], [])
        self._in_grid = self._in_body = self._in_summary = False
        self._cell: list[str] | None = None
        self._null = self._numeric = self._folded = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table" and values.get("class") == "result-grid":
            self._in_grid = True
        elif not self._in_grid:
            return
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.grid.rows.append([])
            self.grid.numeric.append([])
            self.grid.folded.append([])
        elif tag in ("td", "th"):
            self._cell, self._null, self._folded = [], False, False
            self._numeric = values.get("class") == "num"
        elif tag == "span" and values.get("class") == "null":
            self._null = True
        elif tag == "summary":
            self._in_summary = self._folded = True

    def handle_endtag(self, tag: str) -> None:
        if not self._in_grid or (self._cell is None and tag not in ("table", "tbody")):
            return
        if tag in ("table", "tbody"):
            self._in_grid = self._in_body = tag == "tbody"
        elif tag == "summary":
            self._in_summary = False
        elif tag == "th" and self._cell is not None:
            self.grid.header.append("".join(self._cell))
            self._cell = None
        elif tag == "td" and self._cell is not None:
            self.grid.rows[-1].append(None if self._null else "".join(self._cell))
            self.grid.numeric[-1].append(self._numeric)
            self.grid.folded[-1].append(self._folded)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._in_summary:
            self._cell.append(data)


def grid_of(html: str) -> Grid:
    parser = _GridParser()
    parser.feed(html)
    return parser.grid


def shown(value: Any) -> str | None:
    """How the grid shows a JSON value of a REST page: NULL apart, the rest as its text."""
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def csv_cell(value: Any) -> str:
    """How the CSV writes a JSON value of a REST page (the rule in queries/exports.py)."""
    text = shown(value)
    return "" if text is None else text


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', html)
    return None if found is None else found.group(1).replace("&amp;", "&")


def token_of(href: str) -> str:
    return parse_qs(urlsplit(href).query)["page"][0]


def rest_pages(rest: httpx.Client, query_id: str) -> list[dict[str, Any]]:
    """Every page of the query through the REST API, following links.next."""
    pages = [rest.get(f"/api/queries/{query_id}").json()]
    while pages[-1]["links"]["next"]:
        pages.append(rest.get(pages[-1]["links"]["next"]).json())
    return pages


def recent_ids(client: ConsoleClient) -> list[str]:
    return re.findall(r'href="/console/queries/([0-9a-f-]{36})"', client.get("/console/queries").text)


def test_the_grid_pages_through_the_result_with_the_rest_apis_tokens(
    acme: ConsoleClient, rest: httpx.Client, warehouse: Warehouse
) -> None:
    editor = acme.get("/console/queries")
    assert editor.status_code == 200
    assert '<label for="sql">SQL</label>' in editor.text and 'id="sql"' in editor.text
    assert f'value="{warehouse.connection_id}"' in editor.text

    query_id = run(acme, warehouse.connection_id, ITEMS)
    assert query_id in recent_ids(acme)  # re-attachable after a reload
    pages = rest_pages(rest, query_id)
    assert [len(page["data"]["results"]) for page in pages] == [25, 25, 10]
    first = pages[0]["data"]

    visited: list[str] = []
    href: str | None = f"/console/queries/{query_id}"
    for number, page in enumerate(pages):
        assert href is not None
        answer = acme.get(href)
        assert answer.status_code == 200, answer.text
        visited.append(href)
        grid = grid_of(answer.text)
        assert grid.header == first["fields"]
        assert grid.rows == [
            [shown(row[name]) for name in first["fields"]] for row in page["data"]["results"]
        ]
        assert f"{ROWS} rows in 3 pages" in answer.text
        assert f'Results expire at <time datetime="{first["expires"]}">' in answer.text
        expected_next = page["links"]["next"]
        href = link(answer.text, "next")
        assert (href and token_of(href)) == (expected_next and token_of(expected_next)), number
        previous = link(answer.text, "prev")
        expected_previous = page["links"]["previous"]
        assert (previous and token_of(previous)) == (expected_previous and token_of(expected_previous))
    assert href is None

    # ...and back, by the Previous links alone.
    back = visited[-1]
    for expected in reversed(visited[:-1]):
        previous = link(acme.get(back).text, "prev")
        assert previous is not None
        assert grid_of(acme.get(previous).text).rows == grid_of(acme.get(expected).text).rows
        back = previous
    assert link(acme.get(back).text, "prev") is None


def test_the_grid_shows_null_apart_from_empty_numbers_right_and_long_cells_folded(
    acme: ConsoleClient, warehouse: Warehouse
) -> None:
    query_id = run(acme, warehouse.connection_id, ITEMS)
    html = acme.get(f"/console/queries/{query_id}").text
    grid = grid_of(html)
    assert '<th scope="col" class="num">price</th>' in html and '<th scope="col">name</th>' in html
    notes = [row[2] for row in grid.rows]
    assert notes[:3] == ["", "x", None]  # '' is an empty cell; NULL is shown as NULL
    assert grid.rows[0][4] == str(2**60 + 1)  # a 64-bit integer keeps every digit
    assert [flags[3:5] for flags in grid.numeric[:2]] == [[True, True], [True, True]]
    assert grid.numeric[0][1] is False
    assert grid.rows[7][1] == LONG and grid.folded[7][1] is True
    assert not any(grid.folded[0])


def test_the_csv_holds_every_row_of_every_page(
    acme: ConsoleClient, rest: httpx.Client, warehouse: Warehouse
) -> None:
    query_id = run(acme, warehouse.connection_id, ITEMS)
    pages = rest_pages(rest, query_id)
    fields = pages[0]["data"]["fields"]
    everything = [row for page in pages for row in page["data"]["results"]]

    download = acme.get(f"/console/queries/{query_id}/result.csv")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"] == f'attachment; filename="query-{query_id}.csv"'
    assert "default-src 'none'" in download.headers["content-security-policy"]
    assert download.headers["cache-control"] == "no-store"
    assert b"\r\n" in download.content and not download.content.startswith("\ufeff".encode())
    records = list(csv.reader(io.StringIO(download.content.decode(), newline="")))
    assert records[0] == fields
    assert records[1:] == [[csv_cell(row[name]) for name in fields] for row in everything]
    assert len(records) == ROWS + 1
    assert records[1][1] == "=HYPERLINK(1)"  # as stored: without neutralise=1 nothing is changed

    form = acme.get(f"/console/queries/{query_id}").text  # ...which the page's form sends unless unticked
    assert '<input type="checkbox" name="neutralise" value="1" checked>' in form
    assert '<input type="checkbox" name="bom" value="1">' in form

    safe = acme.get(f"/console/queries/{query_id}/result.csv?neutralise=1&bom=1")
    assert safe.status_code == 200
    assert safe.content.startswith("\ufeff".encode())
    safe_records = list(csv.reader(io.StringIO(safe.content.decode("utf-8-sig"), newline="")))
    names = [record[1] for record in safe_records[1:9]]
    assert names == [
        "'=HYPERLINK(1)",
        'a "quoted", comma',
        "two\r\nlines",
        "ünïcödé ✓",
        "'-5",
        "'@sum",
        "",
        LONG,
    ]
    assert [record[4] for record in safe_records[1:]] == [str(2**60 + i) for i in range(1, ROWS + 1)]


def test_an_empty_result_and_a_failed_query(acme: ConsoleClient, warehouse: Warehouse) -> None:
    empty = run(acme, warehouse.connection_id, "SELECT id, name FROM items WHERE id < 0")
    page = acme.get(f"/console/queries/{empty}")
    assert "The query returned no rows." in page.text
    download = acme.get(f"/console/queries/{empty}/result.csv")
    assert download.status_code == 200 and download.content == b"id,name\r\n"

    failed = run(acme, warehouse.connection_id, "SELECT * FROM no_such_table")
    page = acme.get(f"/console/queries/{failed}")
    assert page.status_code == 200
    assert "no such table: no_such_table" in page.text and ">failed<" in page.text
    refused = acme.get(f"/console/queries/{failed}/result.csv")
    assert refused.status_code == 409 and "failed, so it has no results" in refused.text


def _writer_blocked(path: Path) -> bool:
    """Whether another connection holds the file's write lock (a writing statement still runs)."""
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return True
    finally:
        db.close()


def test_cancel_stops_the_statement_on_the_database(
    console_server: ConsoleServer, acme: ConsoleClient, rest: httpx.Client
) -> None:
    ledger = sqlite_warehouse(console_server, writable=True)
    query_id = submit(acme, ledger.connection_id, f"INSERT INTO sink {SLOW_SQLITE}")
    deadline = time.monotonic() + _WAIT_SECONDS
    while not _writer_blocked(ledger.path):  # the statement holds the write lock while it runs
        assert time.monotonic() < deadline, "the statement never started"
        time.sleep(0.05)
    page = acme.get(f"/console/queries/{query_id}")
    assert f'data-poll="/console/queries/{query_id}/status"' in page.text
    assert 'role="timer"' in page.text and ">running<" in page.text
    assert f'action="/console/queries/{query_id}/cancel"' in page.text

    cancelled = acme.post(f"/console/queries/{query_id}/cancel")
    assert cancelled.status_code == 303 and cancelled.headers["location"] == f"/console/queries/{query_id}"
    assert not _writer_blocked(ledger.path)  # nothing left running on the database
    data = rest.get(f"/api/queries/{query_id}").json()["data"]
    assert (data["status"], data["error"]) == ("failed", "cancelled")
    page = acme.get(f"/console/queries/{query_id}")
    assert ">cancelled<" in page.text and "data-poll" not in page.text and "/cancel" not in page.text
    with sqlite3.connect(ledger.path) as db:
        assert db.execute("SELECT count(*) FROM sink").fetchone() == (0,)
    again = acme.post(f"/console/queries/{query_id}/cancel")  # cancelling twice is harmless
    assert again.status_code == 303


def test_only_the_owner_sees_a_query(
    console_server: ConsoleServer, acme: ConsoleClient, warehouse: Warehouse
) -> None:
    query_id = run(acme, warehouse.connection_id, ITEMS)
    token = token_of(link(acme.get(f"/console/queries/{query_id}").text, "next") or "")
    rival = sign_in(console_server.url, console_server.rival.user_api_key)
    colleague = sign_in(console_server.url, console_server.acme.org_api_key)  # same organization
    try:
        for other in (rival, colleague):
            for path in (
                f"/console/queries/{query_id}",
                f"/console/queries/{query_id}?page={token}",
                f"/console/queries/{query_id}/status",
                f"/console/queries/{query_id}/result.csv",
            ):
                answer = other.get(path)
                assert answer.status_code == 404, path
                assert "query not found" in answer.text and "item 9" not in answer.text
            assert other.post(f"/console/queries/{query_id}/cancel").status_code == 404
            assert query_id not in recent_ids(other)
        assert warehouse.connection_id not in rival.get("/console/queries").text
    finally:
        rival.http.close()
        colleague.http.close()


def test_an_expired_query_answers_410_in_plain_words(
    console_server: ConsoleServer, acme: ConsoleClient, warehouse: Warehouse
) -> None:
    query_id = run(acme, warehouse.connection_id, ITEMS)
    token = token_of(link(acme.get(f"/console/queries/{query_id}").text, "next") or "")
    a_minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(console_server.server.home / "keyhole.db") as db:
        db.execute("UPDATE queries SET expires_at = ? WHERE id = ?", (a_minute_ago, query_id))
    for path in (
        f"/console/queries/{query_id}",
        f"/console/queries/{query_id}?page={token}",
        f"/console/queries/{query_id}/status",
        f"/console/queries/{query_id}/result.csv",
    ):
        answer = acme.get(path)
        assert answer.status_code == 410, path
        assert "expired at" in answer.text and "run the query again" in answer.text
        assert "item 9" not in answer.text
    assert query_id not in recent_ids(acme)


def test_hostile_input_gets_a_clear_4xx_and_writes_nothing(
    console_server: ConsoleServer, acme: ConsoleClient, warehouse: Warehouse
) -> None:
    api_connection = create_connection(
        console_server,
        {
            "name": f"api-{uuid.uuid4().hex[:6]}",
            "type": "api",
            "configuration": {"url": "http://127.0.0.1:9"},
            "validate": False,
        },
    )
    assert f'value="{api_connection}"' not in acme.get("/console/queries").text  # no SQL on it
    before = recent_ids(acme)
    refused = [
        ({"connection_id": warehouse.connection_id, "sql": "x" * 1_000_001}, 400, "longer than 1000000"),
        ({"connection_id": warehouse.connection_id, "sql": "   "}, 400, "the query is empty"),
        ({"connection_id": warehouse.connection_id, "sql": "SELECT '\x00'"}, 400, "NUL"),
        ({"connection_id": str(uuid.uuid4()), "sql": "SELECT 1"}, 404, "not found"),
        ({"connection_id": "../../etc", "sql": "SELECT 1"}, 404, "not found"),
        ({"connection_id": api_connection, "sql": "SELECT 1"}, 400, "runs SQL on"),
    ]
    for form, status, words in refused:
        answer = acme.post("/console/queries", form)
        assert answer.status_code == status, (form["connection_id"], answer.text[:300])
        assert words in answer.text
        assert "Traceback" not in answer.text
        if len(form["sql"]) < 100 and form["sql"].strip():
            assert form["sql"].replace("'", "&#39;") in answer.text  # the SQL typed is kept
    too_large = acme.post(
        "/console/queries", {"connection_id": warehouse.connection_id, "sql": "x" * 2_000_000}
    )
    assert too_large.status_code == 413
    no_csrf = acme.http.post(
        "/console/queries",
        data={"connection_id": warehouse.connection_id, "sql": "SELECT 1"},
        headers=SAME_ORIGIN,
    )
    assert no_csrf.status_code == 403 and "security token" in no_csrf.text
    cross_site = acme.post(
        "/console/queries",
        {"connection_id": warehouse.connection_id, "sql": "SELECT 1"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross_site.status_code == 403
    assert recent_ids(acme) == before  # nothing was submitted

    running = submit(acme, warehouse.connection_id, SLOW_SQLITE)
    cancel_without_token = acme.http.post(
        f"/console/queries/{running}/cancel", data={"confirm": "1"}, headers=SAME_ORIGIN
    )
    assert cancel_without_token.status_code == 403
    assert ">cancelled<" not in acme.get(f"/console/queries/{running}").text
    assert acme.post(f"/console/queries/{running}/cancel").status_code == 303

    query_id = run(acme, warehouse.connection_id, ITEMS)
    other_id = run(acme, warehouse.connection_id, ITEMS)
    genuine = token_of(link(acme.get(f"/console/queries/{query_id}").text, "next") or "")
    altered = genuine[:-5] + ("B" if genuine[-5] != "B" else "C") + genuine[-4:]  # one MAC character
    for token in (altered, "not-a-token", genuine.replace(".", "", 1), "%" * 10, genuine + "A"):
        forged = acme.get(f"/console/queries/{query_id}", params={"page": token})
        assert forged.status_code == 400 and "page token is not valid" in forged.text
    borrowed = acme.get(f"/console/queries/{other_id}", params={"page": genuine})
    assert borrowed.status_code == 400
    for bad_id in ("not-a-uuid", str(uuid.uuid4())):
        assert acme.get(f"/console/queries/{bad_id}").status_code == 404
        assert acme.get(f"/console/queries/{bad_id}/result.csv").status_code == 404
    finished = acme.post(f"/console/queries/{query_id}/cancel")  # it had finished: its page says so
    assert finished.status_code == 303 and finished.headers["location"] == f"/console/queries/{query_id}"
    assert ">done<" in acme.get(f"/console/queries/{query_id}").text


def test_a_stored_page_longer_than_a_screen_is_shown_a_screen_at_a_time(
    make_server: Callable[..., KeyholeServer], tmp_path: Path
) -> None:
    sql_root = tmp_path / "sql"
    sql_root.mkdir()
    sqlite3.connect(sql_root / "empty.sqlite").close()
    server = make_server(KEYHOLE_SQL_FILE_ROOT=str(sql_root), KEYHOLE_QUERY_PAGE_ROWS="1000")
    keys = server.bootstrap("screens", "sam@screens.test")
    with httpx.Client(base_url=server.url, headers=keys.bearer, timeout=30) as rest:
        created = rest.post(
            "/api/connections",
            json={"name": "empty", "type": "sqlite", "configuration": {"path": "empty.sqlite"}},
        )
        assert created.status_code == 200, created.text
        client = sign_in(server.url, keys.user_api_key)
        numbers = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1200) SELECT x FROM c"
        )
        query_id = run(client, str(created.json()["data"]["id"]), numbers)
        pages = rest_pages(rest, query_id)
    assert [len(page["data"]["results"]) for page in pages] == [1000, 200]

    def screen(href: str) -> tuple[list[str | None], str | None, str | None, str]:
        html = client.get(href).text
        caption = re.search(r'<caption class="muted">([^<]*)</caption>', html)
        assert caption is not None
        return (
            [row[0] for row in grid_of(html).rows],
            link(html, "prev"),
            link(html, "next"),
            caption.group(1),
        )

    rows, previous, following, caption = screen(f"/console/queries/{query_id}")
    assert rows == [str(x) for x in range(1, 501)] and previous is None
    assert caption == f"Page 1 of 2: rows 1{DASH}500 of its 1000"
    assert following == f"/console/queries/{query_id}?from=500"
    rows, previous, following, caption = screen(following)
    assert (
        rows == [str(x) for x in range(501, 1001)]
        and caption == f"Page 1 of 2: rows 501{DASH}1000 of its 1000"
    )
    assert previous == f"/console/queries/{query_id}"
    assert following is not None and token_of(following) == token_of(pages[0]["links"]["next"])
    rows, previous, following, caption = screen(following)
    assert rows == [str(x) for x in range(1001, 1201)] and following is None and caption == "Page 2 of 2"
    assert previous is not None and previous.endswith("&from=end")
    assert token_of(previous) == token_of(pages[1]["links"]["previous"])
    rows, previous, _, _ = screen(previous)
    assert rows == [str(x) for x in range(501, 1001)]
    assert previous == f"/console/queries/{query_id}?page={token_of(pages[1]['links']['previous'])}"
    assert screen(previous)[0] == [str(x) for x in range(1, 501)]
    for bad in ("1000", "-1", "1e3", "x", "٣"):
        refused = client.get(f"/console/queries/{query_id}", params={"from": bad})
        assert refused.status_code == 400 and "from must be a row number" in refused.text
    client.http.close()


def test_a_form_with_a_field_its_page_did_not_generate_is_refused_whole(
    acme: ConsoleClient, warehouse: Warehouse
) -> None:
    before = recent_ids(acme)
    connection, sql = ("connection_id", warehouse.connection_id), ("sql", ITEMS)
    for pairs, words in (
        ([connection, sql, ("read_only", "0")], "a field this page does not have"),
        ([connection, sql, ("sql", "DELETE FROM items")], "the field &#39;sql&#39; twice"),
        ([connection, ("connection_id", str(uuid.uuid4())), sql], "the field &#39;connection_id&#39; twice"),
    ):
        answer = acme.post("/console/queries", pairs)
        assert answer.status_code == 400, answer.text
        assert words in answer.text and "Traceback" not in answer.text
    assert recent_ids(acme) == before  # nothing was submitted

    running = submit(acme, warehouse.connection_id, SLOW_SQLITE)
    refused = acme.post(f"/console/queries/{running}/cancel", {"confirm": "1"})
    assert refused.status_code == 400 and "a field this page does not have" in refused.text
    assert ">cancelled<" not in acme.get(f"/console/queries/{running}").text
    assert acme.post(f"/console/queries/{running}/cancel").status_code == 303
    assert ">cancelled<" in acme.get(f"/console/queries/{running}").text


class _LabelsOnly:
    """Connections that may only be read by label: anything else would load (and decrypt) one."""

    def __init__(self, labels: tuple[ConnectionLabel, ...]) -> None:
        self._labels = labels
        self.reads = 0

    async def labels(self, principal: Principal) -> tuple[ConnectionLabel, ...]:
        self.reads += 1
        return self._labels

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"connections.{name} was called: a connection was loaded to show a name")


async def test_names_and_the_sql_picker_read_the_labels_once_and_no_connection() -> None:
    catalog = load_catalog()
    connections = _LabelsOnly(
        (
            ConnectionLabel("c-1", "warehouse", catalog.get("sqlite")),
            ConnectionLabel("c-2", "crm", catalog.get("api")),
            ConnectionLabel("c-3", "lake", catalog.get("duckdb")),
        )
    )
    principal = Principal(organization_id="o", key_id="k", kind="user", user_id="u")
    services = cast(Services, SimpleNamespace(connections=connections))
    names = await connection_names(services, principal, ["c-1", "c-2", "c-1", "deleted"])
    assert names == {"c-1": "warehouse", "c-2": "crm"} and connections.reads == 1
    assert await connection_names(services, principal, []) == {} and connections.reads == 1
    unused: Any = None
    queries = QueryService(
        unused, cast(ConnectionService, connections), unused, unused, unused, jobs=unused, blobs=unused
    )
    picked = await queries.sql_connections(principal)
    assert [(label.id, label.name) for label in picked] == [("c-1", "warehouse"), ("c-3", "lake")]
