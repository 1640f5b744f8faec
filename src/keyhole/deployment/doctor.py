"""`keyhole doctor`: check a deployment from the settings of the process it runs in.

Each check says in plain words what it found and, when something is wrong, what to do. The
doctor writes nothing the deployment keeps: no migration, no key, no key check; the blob
probe it writes is deleted again.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum

import obstore
import yarl
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from keyhole.blobs.backends import open_backend
from keyhole.deployment.service import database_clock_skew, recent_processes
from keyhole.errors import describe_failure
from keyhole.jobs.queues import ALL_QUEUES
from keyhole.settings import Settings
from keyhole.store.database import Database
from keyhole.store.migrate import alembic_config
from keyhole.vault import KeyRing, Vault
from keyhole.vault.checks import ForeignKeyRing, store_is_encrypted, verify_key_ring
from keyhole.vault.keyring import KeyRingError, parse_keys

CHECK_SECONDS = 10.0  # each probe's own deadline
MAX_CLOCK_SKEW_SECONDS = 2.0


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str | None = None


async def examine(settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    database = Database(settings.resolved_database_url)
    try:
        store = await _store(database)
        findings.append(store)
        migrations = await _migrations(database) if store.status is Status.OK else None
        if migrations is not None:
            findings.append(migrations)
        if migrations is None or migrations.status is not Status.OK:
            reason = "the store cannot be reached" if migrations is None else "the store is not migrated"
            for check in ("master keys", "workers", "clocks"):
                findings.append(Finding(check, Status.SKIPPED, f"skipped: {reason}"))
        else:
            findings.append(await _master_keys(settings, database))
            findings.extend(await _processes(settings, database))
        findings.append(await _redis(settings))
        findings.append(await _blobs(settings))
    finally:
        await database.dispose()
    return findings


async def _bounded(work: Awaitable[Finding], check: str, what: str) -> Finding:
    try:
        return await asyncio.wait_for(work, CHECK_SECONDS)
    except TimeoutError:
        return Finding(check, Status.PROBLEM, f"{what} did not answer within {CHECK_SECONDS:.0f} s")


def _describe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _store(database: Database) -> Finding:
    where = _describe(database.url)

    async def ping() -> Finding:
        await database.ping()
        return Finding("store", Status.OK, f"reachable: {where}")

    try:
        return await _bounded(ping(), "store", f"the store at {where}")
    except Exception as error:
        return Finding(
            "store",
            Status.PROBLEM,
            f"the store at {where} cannot be used: {describe_failure(error)}",
            "check KEYHOLE_DATABASE_URL, and that the database server runs and accepts this host",
        )


async def _migrations(database: Database) -> Finding:
    expected = set(ScriptDirectory.from_config(alembic_config(database.url)).get_heads())
    try:
        async with database.session() as session:
            applied = set((await session.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    except Exception:
        applied = set()
    if applied == expected:
        return Finding("migrations", Status.OK, f"current ({len(expected)} heads applied)")
    if not applied:
        detail = "the store has no schema yet"
    elif applied - expected:
        unknown = ", ".join(sorted(applied - expected))
        detail = f"the store is newer than this version of Keyhole (unknown: {unknown})"
    else:
        detail = f"{len(expected - applied)} migration branch(es) not applied"
    return Finding(
        "migrations", Status.PROBLEM, detail, "run `keyhole migrate` (servers also migrate on start)"
    )


async def _master_keys(settings: Settings, database: Database) -> Finding:
    fix = (
        "give every server and worker the same KEYHOLE_MASTER_KEYS (on the embedded store: restore "
        "the master.keys file under KEYHOLE_HOME that encrypted it)"
    )
    try:
        if settings.master_keys:
            ring = KeyRing(parse_keys(settings.master_keys))
        elif settings.key_file.exists():
            ring = KeyRing(parse_keys(settings.key_file.read_text()), file=settings.key_file)
        elif await store_is_encrypted(database):
            return Finding(
                "master keys", Status.PROBLEM, "no master key, but the store holds encrypted data", fix
            )
        else:
            return Finding("master keys", Status.OK, "none yet; the first start generates the key file")
    except (KeyRingError, OSError) as error:
        return Finding("master keys", Status.PROBLEM, f"the master keys cannot be read: {error}", fix)
    try:
        await verify_key_ring(database, Vault(ring), record=False)
    except ForeignKeyRing as error:
        return Finding("master keys", Status.PROBLEM, str(error).split(". Every ")[0], fix)
    return Finding("master keys", Status.OK, f"they read the store (primary {ring.primary.kid!r})")


async def _processes(settings: Settings, database: Database) -> list[Finding]:
    window = 3 * settings.heartbeat_seconds
    recent = await recent_processes(database, window)
    findings: list[Finding] = []
    worker = "`keyhole serve`" if settings.job_engine == "embedded" else "`keyhole worker`"
    for queue in ALL_QUEUES:
        takers = [process for process in recent if queue in process.queues]
        if takers:
            findings.append(
                Finding("workers", Status.OK, f"{len(takers)} process(es) take jobs from {queue}")
            )
        else:
            findings.append(
                Finding(
                    "workers",
                    Status.PROBLEM,
                    f"no process has taken jobs from {queue} in the last {window:.0f} s: "
                    "async calls and queries would wait",
                    f"start {worker} (KEYHOLE_JOB_ENGINE={settings.job_engine})",
                )
            )
    servers = [process for process in recent if process.role == "serve"]
    findings.append(
        Finding("servers", Status.OK, f"{len(servers)} server process(es) seen in the last {window:.0f} s")
        if servers
        else Finding("servers", Status.WARNING, f"no `keyhole serve` seen in the last {window:.0f} s")
    )
    versions = sorted({process.version for process in recent})
    if len(versions) > 1:
        findings.append(
            Finding("versions", Status.WARNING, f"processes run different versions: {', '.join(versions)}")
        )
    own = await database_clock_skew(database)
    skewed = [
        f"{process.role} {process.host} pid {process.pid} ({process.clock_skew_seconds:+.1f} s)"
        for process in recent
        if abs(process.clock_skew_seconds) > MAX_CLOCK_SKEW_SECONDS
    ]
    if abs(own) > MAX_CLOCK_SKEW_SECONDS:
        skewed.insert(0, f"this host ({own:+.1f} s)")
    findings.append(
        Finding(
            "clocks",
            Status.PROBLEM,
            "clocks differ from the database's by more than "
            f"{MAX_CLOCK_SKEW_SECONDS:.0f} s: {'; '.join(skewed)}; leases, expiries and download URLs "
            "depend on them",
            "synchronise the clocks (NTP) of every server, worker and the database host",
        )
        if skewed
        else Finding("clocks", Status.OK, f"within {MAX_CLOCK_SKEW_SECONDS:.0f} s of the database's")
    )
    return findings


async def _redis(settings: Settings) -> Finding:
    if settings.redis_url is None:
        return Finding(
            "redis",
            Status.OK,
            "not configured: rate limits are per process and OAuth refresh locks use the store",
        )
    import redis.asyncio as redis

    where = str(yarl.URL(settings.redis_url).with_password(None))
    client = redis.from_url(
        settings.redis_url, socket_timeout=CHECK_SECONDS, socket_connect_timeout=CHECK_SECONDS
    )

    async def ping() -> Finding:
        await client.ping()
        return Finding("redis", Status.OK, f"reachable: {where}")

    try:
        return await _bounded(ping(), "redis", f"Redis at {where}")
    except Exception as error:
        return Finding(
            "redis",
            Status.PROBLEM,
            f"Redis at {where} cannot be used: {describe_failure(error)}",
            "check KEYHOLE_REDIS_URL and that Redis runs; unset it for per-process limits",
        )
    finally:
        await client.aclose()


async def _blobs(settings: Settings) -> Finding:
    fix = (
        "check KEYHOLE_BLOB_URL, that the bucket exists, and the AWS_* credentials' rights (put, get, delete)"
    )
    try:
        backend = open_backend(settings.blob_url, settings.home)
    except Exception as error:
        return Finding("blob store", Status.PROBLEM, f"the blob store cannot be opened: {error}", fix)
    probe = f"doctor/{secrets.token_hex(8)}"
    payload = secrets.token_bytes(64)

    async def round_trip() -> Finding:
        await obstore.put_async(backend.store, probe, payload)
        try:
            read = await (await obstore.get_async(backend.store, probe)).bytes_async()
        finally:
            await obstore.delete_async(backend.store, probe)
        if bytes(read) != payload:
            return Finding("blob store", Status.PROBLEM, "a probe object read back differently", fix)
        return Finding("blob store", Status.OK, f"writable: {backend.description}")

    try:
        return await _bounded(round_trip(), "blob store", f"the blob store at {backend.description}")
    except Exception as error:
        return Finding(
            "blob store",
            Status.PROBLEM,
            f"the blob store at {backend.description} cannot be written: {describe_failure(error)}",
            fix,
        )
