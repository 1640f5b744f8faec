"""Everything Keyhole keeps on disk is private to its service account: directories 0700, files
0600 (the SQLite database, its WAL and shared memory, the key file, every blob), whichever
process made them, and a home left loose by an older version is tightened on start. The
operator's own database files under the SQL file root keep their modes."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from conftest import KeyholeServer, server_env
from jobs.support import AsyncApi, Databases, Deployment, api, kill9
from keyhole.home import prepare_home
from keyhole.settings import Settings
from queries.support import run, sdk

from .helpers import cli_ok

OPERATOR_FILE = 0o644


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def entries(root: Path, *, skip: Path | None = None) -> Iterator[Path]:
    """Every directory and file below ``root``, except what lies inside ``skip``."""
    for directory, subdirectories, files in os.walk(root):
        if Path(directory) == skip:
            subdirectories.clear()
            continue
        for name in (*subdirectories, *files):
            yield Path(directory) / name


def assert_private(home: Path) -> list[Path]:
    """Every directory under ``home`` (and itself) is 0700 and every file 0600, the operator's
    files in the default SQL file root aside; returns the files seen."""
    sql_root = home / "sql"
    loose = [
        (str(path), oct(mode(path)))
        for path in (home, *entries(home, skip=sql_root))
        if mode(path) != (0o700 if path.is_dir() else 0o600)
    ]
    assert not loose, loose
    for path in sql_root.iterdir():
        assert mode(path) == OPERATOR_FILE, path
    return [path for path in entries(home, skip=sql_root) if path.is_file()]


def operator_database(home: Path) -> str:
    """A SQLite file the operator puts into the default SQL file root, with the operator's mode."""
    path = home / "sql" / "operator.sqlite"
    with sqlite3.connect(path) as database:
        database.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        database.execute("INSERT INTO items VALUES (1, 'one')")
    path.chmod(OPERATOR_FILE)
    return path.name


def async_body(client: AsyncApi, upstream: str) -> None:
    """An async proxy call: its answer body becomes a blob."""
    with client.client:
        connection = client.connection(upstream)
        job = client.wait(client.accepted(connection, "/get")["jobId"])
    assert job["status"] == "done", job
    assert job["result"]["bodyDownloadUrl"]


def test_a_fresh_home_is_private_to_the_service_account(tmp_path: Path, httpbin_url: str) -> None:
    home = tmp_path / "state" / "home"  # neither exists yet: the server makes both
    server = KeyholeServer(tmp_path, server_env(home)).start()
    try:
        keys = server.bootstrap("private-files", "owner@private.test")
        async_body(api(server.url, keys.bearer), httpbin_url)
        client = sdk(server, keys.user_api_key)
        connection = client.connections.create(
            name="operator file", type="sqlite", configuration={"path": operator_database(home)}
        )
        assert run(client, connection.data.id, "SELECT name FROM items").data.results == [{"name": "one"}]
        # What the server wrote, as it wrote it: no later command has tightened anything yet.
        files = assert_private(home)
        names = {path.name for path in files}
        assert {"keyhole.db", "keyhole.db-wal", "keyhole.db-shm", "master.keys"} <= names
        blobs = [path for path in files if path.is_relative_to(home / "blobs")]
        assert len(blobs) >= 2, files  # the async body and the query's page

        server.bootstrap("private-files", "second@private.test")
        cli_ok(server, "keys", "list")
        assert_private(home)
        assert mode(tmp_path / "state") == 0o700
    finally:
        server.stop()


def test_blobs_written_by_a_worker_are_private(tmp_path: Path, httpbin_url: str) -> None:
    """With the distributed engine a `keyhole worker` runs the job and writes its body."""
    databases = Databases()
    try:
        database_url = databases.create()
        home = tmp_path / "home"
        env = server_env(
            home,
            KEYHOLE_JOB_ENGINE="procrastinate",
            KEYHOLE_DATABASE_URL=database_url,
            KEYHOLE_JOB_SWEEP_SECONDS="1",
        )
        deployment = Deployment("procrastinate", KeyholeServer(tmp_path, env).start(), database_url)
        try:
            deployment.start_worker()
            keys = deployment.server.bootstrap("worker-files", "owner@worker.test")
            async_body(api(deployment.server.url, keys.bearer), httpbin_url)
            files = assert_private(home)
            assert any(path.is_relative_to(home / "blobs") for path in files)
            assert not (home / "keyhole.db").exists()
        finally:
            deployment.stop()
    finally:
        databases.drop_all()


def loosen(home: Path) -> None:
    """What an older version left behind: directories 0755, files 0644."""
    for path in (home, *entries(home)):
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_loose_home_is_tightened_on_start(tmp_path: Path, httpbin_url: str) -> None:
    home = tmp_path / "home"
    server = KeyholeServer(tmp_path, server_env(home)).start()
    try:
        keys = server.bootstrap("loose-home", "owner@loose.test")
        async_body(api(server.url, keys.bearer), httpbin_url)
        assert server.process is not None
        kill9(server.process)  # a crash: the WAL and shared-memory files stay behind
        server.process = None
        assert (home / "keyhole.db-wal").exists() and (home / "keyhole.db-shm").exists()
        operator_database(home)
        loosen(home)

        server.start()
        files = assert_private(home)
        assert {"keyhole.db", "keyhole.db-wal", "keyhole.db-shm", "master.keys"} <= {p.name for p in files}
        assert any(path.is_relative_to(home / "blobs") for path in files)
        server.stop()

        loosen(home)
        cli_ok(server, "migrate")  # any command tightens, not only the server
        assert_private(home)
    finally:
        server.stop()


def test_files_kept_outside_the_home_are_private_too(tmp_path: Path) -> None:
    """A SQLite database and a local blob directory configured elsewhere; an SQL file root of the
    operator's own, and a file of theirs in the home, are left as they are."""
    database = tmp_path / "db" / "store.db"
    blobs = tmp_path / "blobs"
    (blobs / "nested").mkdir(parents=True, mode=0o755)
    blobs.chmod(0o755)
    (blobs / "nested" / "object").write_bytes(b"x")
    (blobs / "nested" / "object").chmod(0o644)
    database.parent.mkdir()
    for name in ("store.db", "store.db-wal", "store.db-journal"):
        (database.parent / name).touch(mode=0o644)
    (tmp_path / "home").mkdir(mode=0o755)
    (tmp_path / "home").chmod(0o755)
    (tmp_path / "home" / "notes.txt").touch(mode=0o644)  # the operator's, in the home
    operators = tmp_path / "operator-sql"
    operators.mkdir(mode=0o755)
    operators.chmod(0o755)
    (operators / "theirs.sqlite").touch(mode=0o644)

    prepare_home(
        Settings(
            home=tmp_path / "home",
            database_url=f"sqlite+aiosqlite:///{database}",
            blob_url=f"file://{blobs}",
            sql_file_root=operators,
        )
    )
    for name in ("store.db", "store.db-wal", "store.db-journal"):
        assert mode(database.parent / name) == 0o600, name
    assert [mode(path) for path in (blobs, blobs / "nested", blobs / "nested" / "object")] == [
        0o700,
        0o700,
        0o600,
    ]
    assert (mode(operators), mode(operators / "theirs.sqlite")) == (0o755, 0o644)
    assert (mode(tmp_path / "home"), mode(tmp_path / "home" / "notes.txt")) == (0o700, 0o644)


def test_the_database_file_is_created_private_before_sqlite_opens_it(tmp_path: Path) -> None:
    database = tmp_path / "new" / "store.db"
    prepare_home(Settings(home=tmp_path / "home", database_url=f"sqlite+aiosqlite:///{database}"))
    assert database.stat().st_size == 0
    assert (mode(database), mode(database.parent)) == (0o600, 0o700)
