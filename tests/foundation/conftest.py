"""Fixtures shared by the foundation tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conftest import fresh_postgres_database


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_postgres_database() as name:
        yield name
