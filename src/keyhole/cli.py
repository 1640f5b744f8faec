"""The `keyhole` command: serve, worker, migrate, bootstrap, keys."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from keyhole.errors import KeyholeError
from keyhole.logs import configure_logging
from keyhole.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Keyhole credential gateway.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys and master keys.")
app.add_typer(keys_app, name="keys")

T = TypeVar("T")


@app.callback()
def _private_files() -> None:
    from keyhole.home import PRIVATE_UMASK

    # Every command, and the server processes `serve` starts, creates its files private to the
    # service account, those that libraries write (obstore's blobs and uploads) included.
    os.umask(PRIVATE_UMASK)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:  # e.g. the procrastinate engine without PostgreSQL
        reasons = "; ".join(str(item["msg"]).removeprefix("Value error, ") for item in error.errors())
        typer.echo(f"error: invalid configuration: {reasons}", err=True)
        raise typer.Exit(2) from None


def _exit_now(code: int) -> NoReturn:
    """Leave without interpreter finalisation. Everything is closed by now, and obstore's Rust
    runtime can abort() while Python tears its threads down after large streams."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(work: Callable[[Settings], Awaitable[T]]) -> T:
    from keyhole.home import prepare_home

    settings = _settings()
    configure_logging(settings.log_level)
    prepare_home(settings)

    async def main() -> T:
        from keyhole.store.migrate import upgrade

        await upgrade(settings.resolved_database_url)
        return await work(settings)

    try:
        return asyncio.run(main())
    except KeyholeError as error:  # an expected failure (unknown id, ...): one line, no traceback
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Start the API server (migrations are applied on start)."""
    import uvicorn

    from keyhole.home import prepare_home
    from keyhole.store.migrate import upgrade_sync

    settings = _settings()
    configure_logging(settings.log_level)
    # Migrate once here, before any worker starts, so several workers never race on DDL;
    # each worker's own start-up check then finds the schema current.
    prepare_home(settings)
    upgrade_sync(settings.resolved_database_url)
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


@app.command()
def worker() -> None:
    """Run jobs from PostgreSQL (KEYHOLE_JOB_ENGINE=procrastinate) until SIGTERM or SIGINT.

    Start as many as needed, on any machine that reaches the database and the blob store;
    KEYHOLE_WORKER_CONCURRENCY jobs run at once in each.
    """
    from keyhole.jobs.worker import run_worker

    _run(run_worker)
    _exit_now(0)


@app.command()
def migrate() -> None:
    """Apply database migrations and exit."""
    from keyhole.home import prepare_home
    from keyhole.store.migrate import upgrade_sync

    settings = _settings()
    configure_logging(settings.log_level)
    prepare_home(settings)
    upgrade_sync(settings.resolved_database_url)
    typer.echo("migrations applied")


@app.command()
def bootstrap(
    org: Annotated[str, typer.Option(help="Organization name (reused when it exists).")],
    user: Annotated[str, typer.Option(help="User email (reused when it exists).")],
) -> None:
    """Create or reuse an organization and user; mint a user key and an organization key."""

    async def work(settings: Settings) -> dict[str, str]:
        from keyhole.services import Services

        services = Services.build(settings)
        try:
            result = await services.tenancy.bootstrap(org, user)
        finally:
            await services.close()
        return {
            "organization_id": result.organization_id,
            "user_id": result.user_id,
            "user_api_key": result.user_api_key,
            "org_api_key": result.org_api_key,
        }

    typer.echo(json.dumps(_run(work)))


@keys_app.command("list")
def keys_list(
    organization: Annotated[str | None, typer.Option(help="Only this organization's keys.")] = None,
) -> None:
    """List API keys (prefixes only; keys are never stored)."""

    async def work(settings: Settings) -> list[dict[str, str | None]]:
        from keyhole.services import Services

        services = Services.build(settings)
        try:
            views = await services.tenancy.list_keys(organization)
        finally:
            await services.close()
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
            for view in views
        ]

    typer.echo(json.dumps(_run(work), indent=2))


@keys_app.command("create")
def keys_create(
    organization: Annotated[str, typer.Option(help="Organization id.")],
    user: Annotated[str | None, typer.Option(help="User id; omit for an organization key.")] = None,
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
) -> None:
    """Mint a key. It is printed once and cannot be shown again."""

    async def work(settings: Settings) -> dict[str, str]:
        from keyhole.services import Services

        services = Services.build(settings)
        try:
            minted = await services.tenancy.create_key(organization, user_id=user, name=name)
        finally:
            await services.close()
        return {"id": minted.view.id, "kind": minted.view.kind, "api_key": minted.secret}

    typer.echo(json.dumps(_run(work)))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")]) -> None:
    """Revoke a key. Servers stop accepting it within KEYHOLE_CACHE_TTL_SECONDS."""

    async def work(settings: Settings) -> dict[str, str]:
        from keyhole.services import Services

        services = Services.build(settings)
        try:
            view = await services.tenancy.revoke_key(key_id)
        finally:
            await services.close()
        return {"id": view.id, "revoked_at": view.revoked_at.isoformat() if view.revoked_at else ""}

    typer.echo(json.dumps(_run(work)))


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
) -> None:
    """Re-encrypt every secret under a new master key while servers keep serving.

    With a key file (the embedded default) a new key is generated and put in front; with
    KEYHOLE_MASTER_KEYS, put the new key first yourself and pass --no-new-key.
    """

    async def work(settings: Settings) -> dict[str, object]:
        from keyhole.services import Services
        from keyhole.vault.keyring import generate_key
        from keyhole.vault.rotation import reencrypt_all, stale_rows

        services = Services.build(settings)
        try:
            keyring = services.vault.keyring
            if new_key:
                if keyring.file is None:
                    raise typer.BadParameter(
                        "KEYHOLE_MASTER_KEYS is set: put the new key first there and pass --no-new-key"
                    )
                keyring.add_primary(generate_key())
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
        finally:
            await services.close()

    typer.echo(json.dumps(_run(work)))


@keys_app.command("remove-master")
def remove_master(
    kid: Annotated[str, typer.Argument(help="The old key id to delete from the key file.")],
) -> None:
    """Delete an old master key from the key file once nothing is encrypted under it."""

    async def work(settings: Settings) -> dict[str, str]:
        from keyhole.services import Services
        from keyhole.vault.rotation import stale_rows

        services = Services.build(settings)
        try:
            if await stale_rows(services.database, services.vault):
                raise typer.BadParameter("some secrets are still under an old key; run rotate-master first")
            services.vault.keyring.remove(kid)
            return {"removed": kid, "primary": services.vault.keyring.primary.kid}
        finally:
            await services.close()

    typer.echo(json.dumps(_run(work)))


if __name__ == "__main__":
    app()
