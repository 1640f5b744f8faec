"""Apply alembic migrations programmatically (on start and from `keyhole migrate`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_sync(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "heads")


async def upgrade(database_url: str) -> None:
    # alembic's env.py runs its own event loop, so it goes to a worker thread.
    await asyncio.to_thread(upgrade_sync, database_url)
