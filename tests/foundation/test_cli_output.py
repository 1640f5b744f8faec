"""The CLI's contract with scripts and people: results on stdout, logs on stderr only when asked,
one `error:` line and a non-zero status for every known failure, and a `--help` that loads
nothing but the command-line parser."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import PYTHON, server_env


def keyhole(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "keyhole.cli", *args],
        env=server_env(home, **env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_help_loads_only_the_parser(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from keyhole.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['asyncio', 'pydantic', 'sqlalchemy', 'keyhole.settings', 'keyhole.services', 'rich']\n"
        "print('LOADED', [name for name in heavy if name in sys.modules])\n"
    )
    result = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "Commands:" in result.stdout and "serve" in result.stdout, result.stdout
    assert "LOADED []" in result.stdout, result.stdout


def test_results_on_stdout_and_no_logs_unless_verbose(tmp_path: Path) -> None:
    migrated = keyhole(tmp_path, "--verbose", "migrate")
    assert json.loads(migrated.stdout) == {"status": "migrations applied"}
    assert '"level":"info"' in migrated.stderr, migrated.stderr  # with --verbose, INFO lines

    first = keyhole(tmp_path, "bootstrap", "--org", "cli-org", "--user", "c@cli.test")
    assert "generated a master key" in first.stderr  # a warning is shown without --verbose
    assert "generated" not in first.stdout
    quiet = keyhole(tmp_path, "bootstrap", "--org", "cli-org", "--user", "c@cli.test")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""  # no migration or start-up lines after the result
    assert quiet.stdout.endswith("}\n") and quiet.stdout.count("\n") == 1
    assert set(json.loads(quiet.stdout)) == {"organization_id", "user_id", "user_api_key", "org_api_key"}

    table = keyhole(tmp_path, "keys", "list", "--format", "table")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "id",
        "organization_id",
        "user_id",
        "kind",
        "prefix",
        "name",
        "created_at",
        "revoked_at",
    ]
    assert len(rows) == 4 and {row.split()[3] for row in rows} == {"user", "org"}
    key_table = keyhole(tmp_path, "keys", "new-master")
    assert key_table.stdout.count(":") == 1 and key_table.stdout.endswith("\n")


def test_known_failures_are_one_line(tmp_path: Path) -> None:
    assert keyhole(tmp_path, "keys", "list").returncode == 0  # generates the key file
    primary = (tmp_path / "master.keys").read_text().split(":")[0]
    assert "primary key cannot be removed" in one_error_line(
        keyhole(tmp_path, "keys", "remove-master", primary), 1
    )
    assert "no master key 'nope'" in one_error_line(keyhole(tmp_path, "keys", "remove-master", "nope"), 1)
    assert "not found" in one_error_line(keyhole(tmp_path, "keys", "revoke", "not-a-key"), 1).lower()

    other_home = tmp_path / "with-env-keys"
    other_home.mkdir()
    ring = f"env:{base64.b64encode(os.urandom(32)).decode()}"
    refused = keyhole(other_home, "keys", "rotate-master", KEYHOLE_MASTER_KEYS=ring)
    assert "pass --no-new-key" in one_error_line(refused, 1)
    foreign = one_error_line(keyhole(tmp_path, "keys", "list", KEYHOLE_MASTER_KEYS=ring), 2)
    assert "KEYHOLE_MASTER_KEYS" in foreign

    bad_keys = one_error_line(keyhole(tmp_path, "keys", "list", KEYHOLE_MASTER_KEYS="no-colon"), 2)
    assert "master key" in bad_keys
    engine = one_error_line(keyhole(tmp_path, "keys", "list", KEYHOLE_JOB_ENGINE="procrastinate"), 2)
    assert "KEYHOLE_JOB_ENGINE=procrastinate needs a PostgreSQL" in engine


@pytest.mark.postgres
def test_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    ring = f"k:{base64.b64encode(os.urandom(32)).decode()}"
    unreachable = keyhole(
        tmp_path,
        "keys",
        "list",
        KEYHOLE_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:9/none",
        KEYHOLE_MASTER_KEYS=ring,
    )
    assert "the store cannot be used" in one_error_line(unreachable, 1)
