"""``keyhole query run`` against a running server: the whole result saved in each format, or its
rows printed as NDJSON; the server's refusals and the query's failure as one line and status 1;
usage errors as status 2; Ctrl-C and --timeout cancel the query; no file is left behind unless
the command succeeds."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pyarrow.ipc
import pyarrow.parquet
import pytest
from polytomic import Polytomic

from conftest import PYTHON, KeyholeServer, Keys

from .conftest import PAGE_ROWS
from .support import admin, rows_of

ROWS = 2 * PAGE_ROWS + 500  # three pages
SQL = f"SELECT g AS id, 'name ' || g AS name, g % 7 = 0 AS lucky FROM generate_series(1, {ROWS}) g ORDER BY g"
SLOW = "SELECT g, repeat('x', 8000) || pg_sleep(0.001)::text AS filler FROM generate_series(1, 3000) g"


def keyhole_query(
    server: KeyholeServer,
    key: str,
    *args: str,
    cwd: Path,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "keyhole.cli", "query", "run", *args],
        env=client_env(server, key),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def client_env(server: KeyholeServer, key: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYHOLE_")}
    return {**env, "KEYHOLE_URL": server.url, "KEYHOLE_API_KEY": key}


@pytest.fixture(scope="module")
def expected(client: Polytomic, pg: str) -> list[dict[str, Any]]:
    """The rows as the pages of the REST API hold them."""
    rows = rows_of(client, pg, SQL)
    assert len(rows) == ROWS
    return rows


def succeeded(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def failed(done: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


# -- saving the result ---------------------------------------------------------------------------


def test_csv_file_holds_the_rows_of_the_pages(
    qserver: KeyholeServer, alice: Keys, pg: str, expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    done = keyhole_query(
        qserver, alice.user_api_key, "--connection", pg, "--sql", SQL, "-o", "out.csv", cwd=tmp_path
    )

    succeeded(done)
    assert done.stdout == ""  # the summary goes to stderr, with no bar: it is no terminal
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert f"{ROWS:,} rows" in done.stderr and "written to out.csv" in done.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["out.csv"]  # no partial file left
    records = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text(encoding="utf-8"), newline="")))
    assert records[0] == ["id", "name", "lucky"]
    assert records[1:] == [[str(row["id"]), row["name"], str(row["lucky"]).lower()] for row in expected]


@pytest.mark.parametrize("name", ["out.ndjson", "out.jsonl"])
def test_ndjson_file_holds_the_rows_of_the_pages(
    qserver: KeyholeServer, alice: Keys, pg: str, expected: list[dict[str, Any]], tmp_path: Path, name: str
) -> None:
    done = keyhole_query(
        qserver, alice.user_api_key, "--connection", pg, "--sql", SQL, "-o", name, cwd=tmp_path
    )

    succeeded(done)
    lines = (tmp_path / name).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected


def test_parquet_file_holds_the_rows_of_the_pages(
    qserver: KeyholeServer, alice: Keys, pg: str, expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(SQL, encoding="utf-8")
    output = tmp_path / "deep" / "result.parquet"
    output.parent.mkdir()

    done = keyhole_query(
        qserver,
        alice.user_api_key,
        "--connection",
        pg,
        "--sql-file",
        str(sql_file),
        "--output",
        str(output),
        cwd=tmp_path,
    )

    succeeded(done)
    assert pyarrow.parquet.read_table(output).to_pylist() == expected
    assert [path.name for path in output.parent.iterdir()] == ["result.parquet"]


@pytest.mark.parametrize("name", ["out.arrow", "out.arrows"])
def test_arrow_file_holds_the_rows_of_the_pages(
    qserver: KeyholeServer, alice: Keys, pg: str, expected: list[dict[str, Any]], tmp_path: Path, name: str
) -> None:
    done = keyhole_query(
        qserver, alice.user_api_key, "--connection", pg, "--sql", SQL, "-o", name, cwd=tmp_path
    )

    succeeded(done)
    with pyarrow.ipc.open_stream(tmp_path / name) as reader:
        assert reader.read_all().to_pylist() == expected


def test_format_option_overrides_the_extension(
    qserver: KeyholeServer, alice: Keys, pg: str, expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    done = keyhole_query(
        qserver,
        alice.user_api_key,
        "--connection",
        pg,
        "--sql",
        SQL,
        "-o",
        "rows.txt",
        "--format",
        "ndjson",
        cwd=tmp_path,
    )

    succeeded(done)
    lines = (tmp_path / "rows.txt").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected


# -- printing the rows ---------------------------------------------------------------------------


def test_without_output_the_rows_of_every_page_are_printed_as_ndjson(
    qserver: KeyholeServer, alice: Keys, pg: str, expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    done = keyhole_query(
        qserver, alice.user_api_key, "--connection", pg, "--sql-file", "-", stdin=SQL, cwd=tmp_path
    )

    succeeded(done)
    assert [json.loads(line) for line in done.stdout.splitlines()] == expected
    assert f"{ROWS:,} rows printed" in done.stderr and list(tmp_path.iterdir()) == []


def test_sql_from_stdin_with_a_dash(qserver: KeyholeServer, alice: Keys, pg: str, tmp_path: Path) -> None:
    done = keyhole_query(
        qserver,
        alice.user_api_key,
        "--connection",
        pg,
        "--sql",
        "-",
        stdin="SELECT 'ünï' AS word",
        cwd=tmp_path,
    )

    succeeded(done)
    assert done.stdout == '{"word":"ünï"}\n' and "1 row printed" in done.stderr


def test_a_terminal_shows_the_progress_and_stdout_keeps_the_rows_alone(
    qserver: KeyholeServer, alice: Keys, pg: str, tmp_path: Path
) -> None:
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    shown = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the command ended and closed its side
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    with subprocess.Popen(
        [PYTHON, "-m", "keyhole.cli", "query", "run", "--connection", pg, "--sql", SLOW, "-o", "slow.csv"],
        env={**client_env(qserver, alice.user_api_key), "TERM": "xterm-256color"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=secondary,
    ) as command:
        os.close(secondary)
        stdout, _ = command.communicate(timeout=180)
    reader.join(timeout=30)
    os.close(primary)

    assert command.returncode == 0 and stdout == b""
    terminal = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))
    live = re.compile(r"running · [0-9,]+ rows · [0-9.]+ (bytes|kB|MB) · [0-9.]+ s")
    assert live.search(terminal), terminal
    assert "3,000 rows" in terminal and "written to slow.csv" in terminal  # the summary
    assert len((tmp_path / "slow.csv").read_text().splitlines()) == 3001


# -- failures ------------------------------------------------------------------------------------


def test_a_failing_query_prints_the_database_message_and_leaves_no_file(
    qserver: KeyholeServer, alice: Keys, pg: str, tmp_path: Path
) -> None:
    done = keyhole_query(
        qserver,
        alice.user_api_key,
        "--connection",
        pg,
        "--sql",
        "SELECT * FROM kh_cli_missing",
        "-o",
        "x.csv",
        cwd=tmp_path,
    )

    failed(done, 1, 'query_failed: relation "kh_cli_missing" does not exist')
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_key_prints_the_servers_refusal(qserver: KeyholeServer, pg: str, tmp_path: Path) -> None:
    done = keyhole_query(
        qserver, "kh_u_not_a_key", "--connection", pg, "--sql", "SELECT 1", "-o", "x.parquet", cwd=tmp_path
    )

    with httpx.Client(base_url=qserver.url, headers={"Authorization": "Bearer kh_u_not_a_key"}) as http:
        refusal = http.post(f"/api/connections/{pg}/query", json={"query": "SELECT 1"})
    assert refusal.status_code == 401
    failed(done, 1, f"{refusal.json()['key']}: {refusal.json()['message']}")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_connection_prints_the_servers_refusal(
    qserver: KeyholeServer, alice: Keys, tmp_path: Path
) -> None:
    done = keyhole_query(
        qserver, alice.user_api_key, "--connection", str(uuid.uuid4()), "--sql", "SELECT 1", cwd=tmp_path
    )

    failed(done, 1, "not found")


def test_an_unreachable_server_is_one_line(alice: Keys, pg: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "keyhole.cli", "query", "run", "--connection", pg, "--sql", "SELECT 1"],
        env={**os.environ, "KEYHOLE_URL": "http://127.0.0.1:9", "KEYHOLE_API_KEY": alice.user_api_key},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    failed(done, 1, "cannot be reached")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-o", "result.xlsx"], "cannot tell the format of result.xlsx"),
        (["-o", "result"], "pass --format"),
        (["--format", "csv"], "without --output"),
        (["-o", "missing/result.csv"], "cannot write"),
        (["--sql-file", "nowhere.sql"], "pass the SQL with either --sql or --sql-file"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(
    qserver: KeyholeServer, alice: Keys, pg: str, tmp_path: Path, arguments: list[str], message: str
) -> None:
    done = keyhole_query(
        qserver, alice.user_api_key, "--connection", pg, "--sql", "SELECT 1", *arguments, cwd=tmp_path
    )

    failed(done, 2, message)
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_of_the_sql_and_the_key(
    qserver: KeyholeServer, alice: Keys, pg: str, tmp_path: Path
) -> None:
    neither = keyhole_query(qserver, alice.user_api_key, "--connection", pg, cwd=tmp_path)
    failed(neither, 2, "pass the SQL with either --sql or --sql-file")
    unreadable = keyhole_query(
        qserver, alice.user_api_key, "--connection", pg, "--sql-file", "nowhere.sql", cwd=tmp_path
    )
    failed(unreadable, 2, "cannot read --sql-file nowhere.sql")
    keyless = keyhole_query(qserver, "", "--connection", pg, "--sql", "SELECT 1", cwd=tmp_path)
    failed(keyless, 2, "set KEYHOLE_API_KEY")


# -- stopping ------------------------------------------------------------------------------------


def running_query_id(marker: str) -> str:
    """The id of the query whose statement holds ``marker``, once PostgreSQL runs it (the
    runner names its sessions keyhole/q/<query id>/<attempt>)."""
    deadline = time.monotonic() + 60
    while True:
        found = admin(
            "SELECT application_name FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1",
            f"%{marker}%",
        )
        if found:
            return str(found[0][0]).split("/")[2]
        assert time.monotonic() < deadline, "the statement never started"
        time.sleep(0.05)


def assert_cancelled(qserver: KeyholeServer, alice: Keys, query_id: str, marker: str) -> None:
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=30) as http:
        data = http.get(f"/api/queries/{query_id}").json()["data"]
    assert (data["status"], data["error"]) == ("failed", "cancelled")
    assert not admin(
        "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
        f"%{marker}%",
    )


def test_ctrl_c_cancels_the_query_and_exits_130(
    qserver: KeyholeServer, alice: Keys, pg: str, tmp_path: Path
) -> None:
    marker = f"kh_cli_{uuid.uuid4().hex}"
    with subprocess.Popen(
        [
            PYTHON,
            "-m",
            "keyhole.cli",
            "query",
            "run",
            "--connection",
            pg,
            "--sql",
            f"SELECT pg_sleep(60) AS {marker}",
            "-o",
            "never.parquet",
        ],
        env=client_env(qserver, alice.user_api_key),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as command:
        query_id = running_query_id(marker)
        command.send_signal(signal.SIGINT)
        stdout, stderr = command.communicate(timeout=60)

    assert command.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == f"error: interrupted: query {query_id} was cancelled"
    assert stdout == "" and "Traceback" not in stderr
    assert_cancelled(qserver, alice, query_id, marker)
    assert list(tmp_path.iterdir()) == []


def test_timeout_cancels_the_query(qserver: KeyholeServer, alice: Keys, pg: str, tmp_path: Path) -> None:
    marker = f"kh_cli_{uuid.uuid4().hex}"
    done = keyhole_query(
        qserver,
        alice.user_api_key,
        "--connection",
        pg,
        "--sql",
        f"SELECT pg_sleep(60) AS {marker}",
        "--timeout",
        "1",
        "-o",
        "never.csv",
        cwd=tmp_path,
    )

    failed(done, 1, "query_timeout: not finished after 1 s; query ")
    assert done.stderr.rstrip().endswith("was cancelled")
    query_id = done.stderr.rsplit("query ", 1)[1].split()[0]
    assert_cancelled(qserver, alice, query_id, marker)
    assert list(tmp_path.iterdir()) == []
