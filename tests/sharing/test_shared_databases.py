"""A shared SQLite or DuckDB connection (a file under the server's KEYHOLE_SQL_FILE_ROOT) is
queried through the copy with the official SDK; the child cannot point it at another file, and a
change of the parent's file reaches the copy's next query."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from polytomic.errors import NotFoundError

from conftest import KeyholeServer
from foundation.helpers import assert_envelope
from queries.support import rows_of

from .support import PartnerAccount, create_connection, data_of, sdk, share


def _sqlite(path: Path, names: list[str]) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        connection.executemany("INSERT INTO items VALUES (?, ?)", list(enumerate(names, start=1)))


def _duckdb(path: Path, names: list[str]) -> None:
    import duckdb

    connection = duckdb.connect(str(path))
    try:
        connection.execute("CREATE TABLE items (id INTEGER, name VARCHAR)")
        for number, name in enumerate(names, start=1):
            connection.execute("INSERT INTO items VALUES (?, ?)", [number, name])
    finally:
        connection.close()


FILES: dict[str, Callable[[Path, list[str]], None]] = {"sqlite": _sqlite, "duckdb": _duckdb}


@pytest.mark.parametrize("type_id", sorted(FILES))
def test_a_shared_file_database_is_queried_through_the_copy(
    sharing_server: KeyholeServer, http: httpx.Client, account: PartnerAccount, sql_files: Path, type_id: str
) -> None:
    write = FILES[type_id]
    write(sql_files / f"first.{type_id}", ["one", "two"])
    write(sql_files / f"second.{type_id}", ["three"])
    parent = create_connection(http, account.owner.bearer, type_id, {"path": f"first.{type_id}"})
    copy = share(http, account, parent, account.child_a)
    child = sdk(sharing_server, account.child_a.org_api_key)
    query = "SELECT id, name FROM items ORDER BY id"
    assert rows_of(child, copy, query) == [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]

    with pytest.raises(NotFoundError):
        sdk(sharing_server, account.child_b.org_api_key).query_runner.run_query(
            connection_id=copy, query=query
        )
    # The file is the parent's to choose.
    refused = http.put(
        f"/api/connections/{copy}",
        json={"name": "mine", "configuration": {"path": f"second.{type_id}"}},
        headers=account.child_a.bearer,
    )
    assert_envelope(refused, 403, "shared_connection_read_only")
    assert rows_of(child, copy, query) == [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]

    name = data_of(http.get(f"/api/connections/{parent}", headers=account.owner.bearer))["name"]
    moved = http.put(
        f"/api/connections/{parent}",
        json={"name": name, "configuration": {"path": f"second.{type_id}"}},
        headers=account.owner.bearer,
    )
    assert moved.status_code == 200, moved.text
    assert rows_of(child, copy, query) == [{"id": 1, "name": "three"}]
    shown = data_of(http.get(f"/api/connections/{copy}", headers=account.child_a.bearer))
    assert (shown["configuration"], shown["parent_connection_id"]) == ({"path": f"second.{type_id}"}, parent)
