"""Connectivity checks for SQL connections (``SELECT 1``) that honour the egress policy.

The hostname is resolved and checked once through the egress resolver, and the driver
connects to the checked address, so a database host gets the same SSRF rules as HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keyhole.databases.file_paths import resolve_sql_file
from keyhole.egress import CheckingResolver
from keyhole.errors import KeyholeError, UpstreamUnreachable
from keyhole.vault.scrub import Scrubber, scrub_message

PROBE_TIMEOUT_SECONDS = 10.0


async def pinned_address(resolver: CheckingResolver, host: str, port: int) -> str:
    answers = await resolver.resolve(host, port, socket.AF_UNSPEC)
    return answers[0].host


async def probe_sql(
    dialect: str, configuration: Mapping[str, Any], *, resolver: CheckingResolver, file_root: Path
) -> None:
    """Raise ``UpstreamUnreachable`` (or ``EgressDenied``) with a message free of secrets."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            match dialect:
                case "postgresql":
                    await _postgresql(configuration, resolver)
                case "mysql":
                    await _mysql(configuration, resolver)
                case "sqlite":
                    await asyncio.to_thread(_sqlite, resolve_sql_file(configuration["path"], file_root))
                case "duckdb":
                    await asyncio.to_thread(_duckdb, resolve_sql_file(configuration["path"], file_root))
    except KeyholeError:
        raise
    except TimeoutError:
        raise UpstreamUnreachable(
            f"database did not answer within {PROBE_TIMEOUT_SECONDS:.0f}s", key="database_unreachable"
        ) from None
    except Exception as exc:  # driver errors vary by dialect; report the class and a safe message
        raise UpstreamUnreachable(
            f"database check failed: {safe_driver_message(exc, configuration)}", key="database_unreachable"
        ) from None


def password_scrubber(configuration: Mapping[str, Any]) -> Scrubber:
    """The password of a database connection's configuration, in every echo form."""
    password = configuration.get("password")
    return Scrubber.of([str(password)] if password else [])


def safe_driver_message(exc: BaseException, configuration: Mapping[str, Any]) -> str:
    """The driver's message with the password (every form, any case) and DSN credentials replaced."""
    return scrub_message(f"{type(exc).__name__}: {exc}".strip(), password_scrubber(configuration), 500)


async def connect_postgresql(
    configuration: Mapping[str, Any], resolver: CheckingResolver, *, connect_timeout: float, **options: Any
) -> Any:
    """An asyncpg connection to the egress-checked address of a PostgreSQL connection's host."""
    import asyncpg

    port = int(configuration.get("port") or 5432)
    address = await pinned_address(resolver, configuration["hostname"], port)
    ssl_mode = configuration.get("ssl_mode", "prefer")
    return await asyncpg.connect(
        host=address,
        port=port,
        user=configuration["username"],
        password=configuration.get("password") or "",  # never PGPASSWORD or a password file of the server
        database=configuration.get("database") or "postgres",
        ssl=None if ssl_mode == "disable" else ssl_mode,
        timeout=connect_timeout,
        **options,
    )


async def _postgresql(
    configuration: Mapping[str, Any], resolver: CheckingResolver, statement: str = "SELECT 1"
) -> list[str]:
    connection = await connect_postgresql(configuration, resolver, connect_timeout=PROBE_TIMEOUT_SECONDS)
    try:
        return [str(record[0]) for record in await connection.fetch(statement)]
    finally:
        await connection.close()


async def _mysql(
    configuration: Mapping[str, Any], resolver: CheckingResolver, statement: str = "SELECT 1"
) -> list[str]:
    import aiomysql

    port = int(configuration.get("port") or 3306)
    address = await pinned_address(resolver, configuration["hostname"], port)
    connection = await aiomysql.connect(
        host=address,
        port=port,
        user=configuration["username"],
        password=configuration.get("password") or "",
        db=configuration.get("database") or None,
        connect_timeout=PROBE_TIMEOUT_SECONDS,
    )
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(statement)
            return [str(row[0]) for row in await cursor.fetchall()]
    finally:
        connection.close()


async def list_databases(
    dialect: str, configuration: Mapping[str, Any], *, resolver: CheckingResolver
) -> list[str]:
    """Database names visible to the configured user (PostgreSQL and MySQL only)."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            if dialect == "postgresql":
                return await _postgresql(configuration, resolver, _PG_DATABASES)
            return await _mysql(configuration, resolver, "SHOW DATABASES")
    except (KeyholeError, KeyError):  # a KeyError is a missing parameter: the caller reports it
        raise
    except TimeoutError:
        raise UpstreamUnreachable("database did not answer in time", key="database_unreachable") from None
    except Exception as exc:
        raise UpstreamUnreachable(
            f"database check failed: {safe_driver_message(exc, configuration)}", key="database_unreachable"
        ) from None


_PG_DATABASES = "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1"


def _sqlite(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"no database file at {path.name}")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        connection.execute("SELECT 1")


def _duckdb(path: Path) -> None:
    import duckdb

    if not path.exists():
        raise FileNotFoundError(f"no database file at {path.name}")
    with duckdb.connect(str(path), read_only=True) as connection:
        connection.execute("SELECT 1")
