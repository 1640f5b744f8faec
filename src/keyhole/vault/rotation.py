"""Online re-encryption of every encrypted column under the primary master key.

Each model lists its encrypted columns in ``__encrypted_columns__``. Rows are rewritten one
at a time with a compare-and-swap on the old ciphertext, so a concurrent update of a row
is never overwritten and servers keep serving throughout.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from keyhole.store.base import Base
from keyhole.store.database import Database
from keyhole.vault.cipher import Vault


@dataclass(slots=True)
class RotationReport:
    reencrypted: int = 0


def row_aad(table: str, row_id: str, column: str) -> str:
    return f"{table}:{row_id}:{column}"


def encrypted_columns() -> Iterator[tuple[type[Any], str]]:
    for mapper in Base.registry.mappers:
        for column in getattr(mapper.class_, "__encrypted_columns__", ()):
            yield mapper.class_, column


async def reencrypt_all(database: Database, vault: Vault, *, batch: int = 200) -> RotationReport:
    report = RotationReport()
    primary = vault.keyring.primary.kid
    for model, column in encrypted_columns():
        attribute = getattr(model, column)
        last_id = ""
        while True:
            async with database.session() as session:
                rows = (
                    await session.execute(
                        select(model.id, attribute)
                        .where(model.id > last_id, attribute.is_not(None))
                        .order_by(model.id)
                        .limit(batch)
                    )
                ).all()
            if not rows:
                break
            for row_id, token in rows:
                last_id = row_id
                if Vault.key_id(token) == primary:
                    continue
                aad = row_aad(model.__tablename__, row_id, column)
                fresh = vault.encrypt(vault.decrypt(token, aad), aad)
                async with database.transaction() as session:
                    result = await session.execute(
                        update(model).where(model.id == row_id, attribute == token).values({column: fresh})
                    )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    report.reencrypted += 1
    return report


async def stale_rows(database: Database, vault: Vault) -> int:
    """How many ciphertexts are still under a key other than the primary."""
    primary = vault.keyring.primary.kid
    count = 0
    for model, column in encrypted_columns():
        attribute = getattr(model, column)
        async with database.session() as session:
            tokens = (await session.execute(select(attribute).where(attribute.is_not(None)))).scalars()
            count += sum(1 for token in tokens if Vault.key_id(token) != primary)
    return count
