"""The `keyhole` command: serve, worker, migrate, doctor, bootstrap, keys, mcp, query.

Results go to stdout (one JSON document and a newline, or a table with ``--format table``);
logs go to stderr, at WARNING unless ``--verbose``. A known failure is one ``error:`` line
and a non-zero status: 1 for a refused operation, 2 for a configuration that cannot run.
Imports are deferred to the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from keyhole.services import Services
    from keyhole.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Keyhole credential gateway.",
)
keys_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="API keys and master keys.")
app.add_typer(keys_app, name="keys")
query_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="SQL on a database connection of a Keyhole server."
)
app.add_typer(query_app, name="query")

T = TypeVar("T")


class Format(StrEnum):
    json = "json"
    table = "table"


FormatOption = Annotated[Format, typer.Option("--format", help="json (default) or a readable table.")]

# The commands that are clients of a running server (mcp, query) find it and their key so.
DEFAULT_URL = "http://127.0.0.1:8000"
UrlOption = Annotated[str, typer.Option(envvar="KEYHOLE_URL", help="The Keyhole server.")]
ApiKeyOption = Annotated[
    str,
    typer.Option(
        envvar="KEYHOLE_API_KEY", show_default=False, help="A user or organization key (kh_u_…, kh_o_…)."
    ),
]


class _Options:
    verbose = False


class Refused(Exception):
    """An operation the command will not do as asked; the message says what to do instead."""


@app.callback()
def _global(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log at KEYHOLE_LOG_LEVEL instead of WARNING.")
    ] = False,
) -> None:
    from keyhole.home import PRIVATE_UMASK

    _Options.verbose = verbose
    # Every command, and the server processes `serve` starts, creates its files private to the
    # service account, those that libraries write (obstore's blobs and uploads) included.
    os.umask(PRIVATE_UMASK)


# -- running a command ---------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _known_failures() -> Iterator[None]:
    """Every failure an operator can meet and fix, as one line instead of a traceback."""
    from sqlalchemy.exc import DBAPIError

    from keyhole.errors import KeyholeError, describe_failure
    from keyhole.vault.checks import ForeignKeyRing
    from keyhole.vault.keyring import KeyRingError

    try:
        yield
    except ForeignKeyRing as error:
        _fail(str(error), 2)
    except KeyRingError as error:
        _fail(f"master keys: {error}", 2)
    except KeyholeError as error:  # an expected failure (unknown id, ...)
        _fail(error.message)
    except Refused as error:
        _fail(str(error))
    except (DBAPIError, OSError) as error:
        _fail(f"the store cannot be used: {describe_failure(error)}")


def _settings(*, server: bool = False) -> Settings:
    from pydantic import ValidationError

    from keyhole.logs import configure_logging
    from keyhole.settings import Settings

    try:
        settings = Settings()
    except ValidationError as error:  # e.g. the procrastinate engine without PostgreSQL
        reasons = "; ".join(str(item["msg"]).removeprefix("Value error, ") for item in error.errors())
        _fail(f"invalid configuration: {reasons}", 2)
    # A server's and a worker's logs are their output; an admin command's output is its result.
    configure_logging(settings.log_level if server or _Options.verbose else "WARNING")
    if not _Options.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    return settings


def _exit_now(code: int) -> NoReturn:
    """Leave without interpreter finalisation. Everything is closed by now, and obstore's Rust
    runtime can abort() while Python tears its threads down after large streams."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(work: Callable[[Settings], Awaitable[T]], *, server: bool = False) -> T:
    from keyhole.home import prepare_home

    settings = _settings(server=server)
    prepare_home(settings)

    import asyncio

    async def main() -> T:
        from keyhole.store.migrate import upgrade

        await upgrade(settings.resolved_database_url)
        return await work(settings)

    with _known_failures():
        return asyncio.run(main())


def _with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    async def run(settings: Settings) -> T:
        from keyhole.services import Services
        from keyhole.vault.checks import verify_key_ring

        services = Services.build(settings)
        try:
            await verify_key_ring(services.database, services.vault)
            return await work(services)
        finally:
            await services.close()

    return _run(run)


def _emit(result: Any, output: Format = Format.json) -> None:
    if output is Format.json:
        typer.echo(json.dumps(result))
        return
    rows = result if isinstance(result, list) else [result]
    if not rows:
        typer.echo("(none)")
        return
    if not isinstance(result, list):
        width = max(len(str(key)) for key in result)
        for key, value in result.items():
            typer.echo(f"{key:<{width}}  {_cell(value)}")
        return
    columns = list(rows[0])
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    for line in [columns, *cells]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


# -- processes ------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Start the API server (migrations are applied on start)."""
    import asyncio

    import uvicorn

    from keyhole.home import prepare_home
    from keyhole.store.migrate import upgrade_sync

    settings = _settings(server=True)
    with _known_failures():
        # Migrate once here, before any worker starts, so several workers never race on DDL;
        # each worker's own start-up check then finds the schema current.
        prepare_home(settings)
        upgrade_sync(settings.resolved_database_url)
        # Each server process checks the key ring at start too; doing it once here first ends
        # `serve` with one line instead of a worker's traceback.
        asyncio.run(_verify_key_ring(settings))
    uvicorn.run(
        "keyhole.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
    )
    _exit_now(0)


def _require_api_key(api_key: str) -> None:
    if not api_key:
        _fail("set KEYHOLE_API_KEY to a Keyhole API key (mint one with `keyhole keys create`)", 2)


@app.command()
def mcp(url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = "") -> None:
    """Serve the MCP tools on stdin/stdout for a desktop agent, relaying to a Keyhole server."""
    import asyncio

    from keyhole.api.mcp.relay import RelayFailed, relay
    from keyhole.logs import configure_logging

    _require_api_key(api_key)
    configure_logging("INFO" if _Options.verbose else "WARNING")  # to stderr: stdout is the protocol's
    try:
        asyncio.run(relay(url, api_key))
    except RelayFailed as error:
        _fail(str(error), 2)
    except KeyboardInterrupt:
        pass


class ResultFormat(StrEnum):
    csv = "csv"
    ndjson = "ndjson"
    parquet = "parquet"
    arrow = "arrow"


@query_app.command("run")
def query_run(
    connection: Annotated[str, typer.Option("--connection", help="The id of a database connection.")],
    sql: Annotated[str | None, typer.Option(help="The SQL to run ('-': read it from stdin).")] = None,
    sql_file: Annotated[
        str | None, typer.Option(help="A UTF-8 file holding the SQL ('-': stdin).", show_default=False)
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Save the whole result in this file; without it, print the rows as NDJSON."
        ),
    ] = None,
    result_format: Annotated[
        ResultFormat | None,
        typer.Option("--format", help="The format of --output (default: told by its extension)."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0, help="Cancel the query when it has not finished after this many seconds."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
) -> None:
    """Run SQL on a connection and save its result (.csv, .ndjson/.jsonl, .parquet, .arrow/.arrows)
    or print its rows as NDJSON. Progress shows on stderr; Ctrl-C cancels the query."""
    from keyhole.cli_query import QueryRun, QueryRunFailed, read_sql, run

    _require_api_key(api_key)
    try:
        run(
            QueryRun(
                url=url,
                api_key=api_key,
                connection_id=connection,
                sql=read_sql(sql, sql_file),
                output=output,
                format=None if result_format is None else result_format.value,
                timeout=timeout,
            )
        )
    except QueryRunFailed as error:
        _fail(str(error), error.code)


async def _verify_key_ring(settings: Settings) -> None:
    from keyhole.store.database import Database
    from keyhole.vault import KeyRing, Vault
    from keyhole.vault.checks import verify_key_ring

    database = Database(settings.resolved_database_url)
    try:
        await verify_key_ring(database, Vault(KeyRing.load(settings.master_keys, settings.key_file)))
    finally:
        await database.dispose()


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="The queues to take jobs from: any of proxy, queries, maintenance.")
    ] = "proxy,queries,maintenance",
    metrics_port: Annotated[
        int, typer.Option(help="Serve Prometheus metrics on this port (0: none).", min=0, max=65535)
    ] = 0,
    metrics_host: Annotated[str, typer.Option(help="Interface of the metrics port.")] = "127.0.0.1",
) -> None:
    """Run jobs from PostgreSQL (KEYHOLE_JOB_ENGINE=procrastinate) until SIGTERM or SIGINT.

    Start as many as needed, on any machine that reaches the database and the blob store. Each
    queue has its own slots: KEYHOLE_PROXY_JOB_CONCURRENCY async proxy calls and
    KEYHOLE_QUERY_JOB_CONCURRENCY queries at once, and one for the sweep and purge.
    """
    from keyhole.jobs.queues import parse_queues
    from keyhole.worker import run_worker

    try:
        selected = parse_queues(queues)
    except ValueError as error:
        _fail(f"--queues: {error}", 2)

    async def work(settings: Settings) -> None:
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(metrics_port, addr=metrics_host)
        await run_worker(settings, selected)

    _run(work, server=True)
    _exit_now(0)


@app.command()
def migrate(output: FormatOption = Format.json) -> None:
    """Apply database migrations and exit."""
    from keyhole.home import prepare_home
    from keyhole.store.migrate import upgrade_sync

    settings = _settings()
    with _known_failures():
        prepare_home(settings)
        upgrade_sync(settings.resolved_database_url)
    _emit({"status": "migrations applied"}, output)


@app.command()
def doctor(
    output: Annotated[
        Format, typer.Option("--format", help="table (default): plain words; json: for scripts.")
    ] = Format.table,
) -> None:
    """Check this deployment: store and migrations, master keys, workers per queue, clocks, Redis
    and the blob store. Exits 1 when something is wrong; changes nothing."""
    import asyncio

    from keyhole.deployment.doctor import Status, examine

    settings = _settings()
    findings = asyncio.run(examine(settings))
    if output is Format.json:
        _emit([{"check": f.check, "status": f.status, "detail": f.detail, "fix": f.fix} for f in findings])
    else:
        width = max(len(finding.check) for finding in findings)
        for finding in findings:
            typer.echo(f"{finding.status.value:<8} {finding.check:<{width}}  {finding.detail}")
            if finding.fix:
                typer.echo(f"{'':<8} {'':<{width}}  → {finding.fix}")
    if any(finding.status is Status.PROBLEM for finding in findings):
        raise typer.Exit(1)


# -- tenancy --------------------------------------------------------------------------------------


@app.command()
def bootstrap(
    org: Annotated[str, typer.Option(help="Organization name (reused when it exists).")],
    user: Annotated[str, typer.Option(help="User email (reused when it exists).")],
    partner: Annotated[
        bool, typer.Option("--partner", help="Also mint a partner key: this organization manages others.")
    ] = False,
    output: FormatOption = Format.json,
) -> None:
    """Create or reuse an organization and its admin user; mint a user key and an organization key
    (and a partner key with --partner)."""

    async def work(services: Services) -> dict[str, str]:
        result = await services.tenancy.bootstrap(org, user, partner=partner)
        minted = {
            "organization_id": result.organization_id,
            "user_id": result.user_id,
            "user_api_key": result.user_api_key,
            "org_api_key": result.org_api_key,
        }
        if result.partner_api_key is not None:
            minted["partner_api_key"] = result.partner_api_key
        return minted

    _emit(_with_services(work), output)


@keys_app.command("list")
def keys_list(
    organization: Annotated[str | None, typer.Option(help="Only this organization's keys.")] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Only keys whose listed prefix starts with this (e.g. kh_u_AbC).")
    ] = None,
    output: FormatOption = Format.json,
) -> None:
    """List API keys (prefixes only; keys are never stored)."""

    async def work(services: Services) -> list[dict[str, str | None]]:
        return [
            {
                "id": view.id,
                "organization_id": view.organization_id,
                "user_id": view.user_id,
                "kind": view.kind,
                "prefix": view.prefix,
                "name": view.name,
                "created_at": view.created_at.isoformat(),
                "revoked_at": view.revoked_at.isoformat() if view.revoked_at else None,
            }
            for view in await services.tenancy.list_keys(organization, prefix=prefix)
        ]

    _emit(_with_services(work), output)


@keys_app.command("create")
def keys_create(
    organization: Annotated[str, typer.Option(help="Organization id.")],
    user: Annotated[str | None, typer.Option(help="User id; omit for an organization key.")] = None,
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    partner: Annotated[
        bool, typer.Option("--partner", help="A partner key: manages organizations and their users.")
    ] = False,
    output: FormatOption = Format.json,
) -> None:
    """Mint a key. It is printed once and cannot be shown again."""

    async def work(services: Services) -> dict[str, str]:
        minted = await services.tenancy.create_key(organization, user_id=user, name=name, partner=partner)
        return {"id": minted.view.id, "kind": minted.view.kind, "api_key": minted.secret}

    _emit(_with_services(work), output)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")],
    output: FormatOption = Format.json,
) -> None:
    """Revoke a key. Servers stop accepting it within KEYHOLE_CACHE_TTL_SECONDS."""

    async def work(services: Services) -> dict[str, str]:
        view = await services.tenancy.revoke_key(key_id)
        return {"id": view.id, "revoked_at": view.revoked_at.isoformat() if view.revoked_at else ""}

    _emit(_with_services(work), output)


# -- master keys ----------------------------------------------------------------------------------


@keys_app.command("new-master")
def new_master() -> None:
    """Print a new master key (kid:base64key) for KEYHOLE_MASTER_KEYS; nothing is stored."""
    from keyhole.vault.keyring import generate_key

    typer.echo(generate_key().serialize())


@keys_app.command("rotate-master")
def rotate_master(
    new_key: Annotated[
        bool, typer.Option("--new-key/--no-new-key", help="Generate a new key file entry first.")
    ] = True,
    output: FormatOption = Format.json,
) -> None:
    """Re-encrypt every secret under a new master key while servers keep serving.

    With a key file (the embedded default) a new key is generated and put in front; with
    KEYHOLE_MASTER_KEYS, put the new key first yourself and pass --no-new-key.
    """

    async def work(services: Services) -> dict[str, object]:
        from keyhole.vault.checks import record_primary
        from keyhole.vault.keyring import generate_key
        from keyhole.vault.rotation import reencrypt_all, stale_rows

        keyring = services.vault.keyring
        if new_key:
            if keyring.file is None:
                raise Refused("KEYHOLE_MASTER_KEYS is set: put the new key first there and pass --no-new-key")
            keyring.add_primary(generate_key())
            await record_primary(services.database, services.vault)
        passes = 0
        while True:
            passes += 1
            report = await reencrypt_all(services.database, services.vault)
            remaining = await stale_rows(services.database, services.vault)
            if remaining == 0 or passes >= 5:
                break
        return {
            "primary": keyring.primary.kid,
            "reencrypted": report.reencrypted,
            "remaining_under_old_keys": remaining,
            "old_keys": [kid for kid in keyring.kids if kid != keyring.primary.kid],
        }

    _emit(_with_services(work), output)


@keys_app.command("remove-master")
def remove_master(
    kid: Annotated[str, typer.Argument(help="The old key id to delete from the key file.")],
    output: FormatOption = Format.json,
) -> None:
    """Delete an old master key from the key file once nothing is encrypted under it."""

    async def work(services: Services) -> dict[str, str]:
        from keyhole.vault.checks import forget
        from keyhole.vault.keyring import KeyRingError
        from keyhole.vault.rotation import stale_rows

        if await stale_rows(services.database, services.vault):
            raise Refused("some secrets are still under an old key; run `keyhole keys rotate-master` first")
        try:
            services.vault.keyring.remove(kid)
        except KeyRingError as error:
            raise Refused(str(error)) from None
        await forget(services.database, kid)
        return {"removed": kid, "primary": services.vault.keyring.primary.kid}

    _emit(_with_services(work), output)


if __name__ == "__main__":
    app()
