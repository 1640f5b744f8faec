"""Refuse to run with master keys that cannot read the store.

A process holding other keys than its peers would report ready, fail on every existing secret
and encrypt new ones under a key nobody else has. So the store keeps, per key id, a known value
sealed under that key (``master_key_checks``), written when the key first becomes primary; at
start every process opens the checks of the keys it holds and stops unless they open and it
holds at least one of the store's keys.
"""

from __future__ import annotations

import hmac

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from keyhole.store.database import Database
from keyhole.vault.cipher import Vault, VaultError
from keyhole.vault.models import MasterKeyCheck
from keyhole.vault.rotation import encrypted_columns, row_aad

_CHECK_VALUE = b"keyhole master key check v1"


class ForeignKeyRing(Exception):
    """The configured master keys cannot read this store. The message names what to fix."""


async def verify_key_ring(database: Database, vault: Vault, *, record: bool = True) -> None:
    """Stop with :class:`ForeignKeyRing` unless the ring reads the store; then (``record``) make
    sure the primary key has its check, so that later processes are held to it."""
    checks = await _checks(database)
    if checks:
        _open_checks(vault, checks)
    else:
        await _open_sample(database, vault)
    primary = vault.keyring.primary.kid
    if record and primary not in checks:
        await _record(database, vault, primary)
        # Two processes may start at once with different keys under the same id: only one
        # insert wins, and the loser must find that its key does not open the winner's check.
        _open_checks(vault, {primary: (await _checks(database))[primary]})


async def record_primary(database: Database, vault: Vault) -> None:
    """Seal a check for a key just put in front (``keys rotate-master``)."""
    if vault.keyring.primary.kid not in await _checks(database):
        await _record(database, vault, vault.keyring.primary.kid)


async def store_is_encrypted(database: Database) -> bool:
    """Whether anything in the store needs a master key to be read."""
    if await _checks(database):
        return True
    for model, column in encrypted_columns():
        attribute = getattr(model, column)
        async with database.session() as session:
            if (await session.execute(select(model.id).where(attribute.is_not(None)).limit(1))).first():
                return True
    return False


async def forget(database: Database, kid: str) -> None:
    """Drop the check of a key that no longer encrypts anything (``keys remove-master``)."""
    async with database.transaction() as session:
        await session.execute(delete(MasterKeyCheck).where(MasterKeyCheck.kid == kid))


async def _checks(database: Database) -> dict[str, str]:
    async with database.session() as session:
        rows = (await session.execute(select(MasterKeyCheck.kid, MasterKeyCheck.sealed))).all()
    return {kid: sealed for kid, sealed in rows}


async def _record(database: Database, vault: Vault, kid: str) -> None:
    sealed = vault.encrypt(_CHECK_VALUE, _aad(kid))
    try:
        async with database.transaction() as session:
            session.add(MasterKeyCheck(kid=kid, sealed=sealed))
    except IntegrityError:
        pass  # another process sealed it first; the caller opens theirs


def _open_checks(vault: Vault, checks: dict[str, str]) -> None:
    held = [kid for kid in checks if vault.keyring.find(kid) is not None]
    if not held:
        raise ForeignKeyRing(
            f"the master keys hold none of the keys this store is encrypted under "
            f"(the store's: {', '.join(sorted(checks))}; these: {', '.join(vault.keyring.kids)}). "
            f"{_REMEDY}"
        )
    for kid in held:
        try:
            opened = vault.decrypt(checks[kid], _aad(kid))
        except VaultError:
            opened = b""
        if not hmac.compare_digest(opened, _CHECK_VALUE):
            raise ForeignKeyRing(
                f"master key {kid!r} is not the key {kid!r} this store is encrypted under "
                f"(its key check does not open). {_REMEDY}"
            )


async def _open_sample(database: Database, vault: Vault) -> None:
    """A store from before key checks existed: one stored ciphertext of each kind must open."""
    for model, column in encrypted_columns():
        attribute = getattr(model, column)
        async with database.session() as session:
            row = (
                await session.execute(select(model.id, attribute).where(attribute.is_not(None)).limit(1))
            ).first()
        if row is None:
            continue
        try:
            vault.decrypt(row[1], row_aad(model.__tablename__, row[0], column))
        except VaultError as error:
            raise ForeignKeyRing(f"a stored secret does not open: {error}. {_REMEDY}") from None


def _aad(kid: str) -> str:
    return row_aad(MasterKeyCheck.__tablename__, kid, "sealed")


_REMEDY = (
    "Every server and worker sharing a store must run with the same KEYHOLE_MASTER_KEYS "
    "(or, on the embedded store, the master.keys file under KEYHOLE_HOME that encrypted it); "
    "this process refuses to start rather than fail on every secret"
)
