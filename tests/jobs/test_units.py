"""Pure pieces of the job system and of idempotency keys, tested on their own."""

from __future__ import annotations

import pytest
from croniter import croniter

from keyhole.idempotency import check_key, fingerprint
from keyhole.jobs.engines.procrastinate import _every, libpq_conninfo, psycopg_url


@pytest.mark.parametrize("seconds", [1, 5, 7, 60, 300])
def test_cron_expressions_are_valid(seconds: float) -> None:
    assert croniter.is_valid(_every(seconds))


def test_database_urls_for_procrastinate() -> None:
    url = "postgresql+asyncpg://user:p%40ss@db.example:5433/keyhole?ssl=require"
    assert psycopg_url(url) == "postgresql+psycopg://user:p%40ss@db.example:5433/keyhole?sslmode=require"
    assert libpq_conninfo(url) == "postgresql://user:p%40ss@db.example:5433/keyhole?sslmode=require"


def test_fingerprints_separate_their_parts() -> None:
    assert fingerprint("POST", "/a", "", b"b") != fingerprint("POST", "/ab", "", b"")
    assert fingerprint("POST", "/a", "x=1", b"") != fingerprint("POST", "/a", "", b"x=1")
    assert fingerprint("post", "/a", "", b"") == fingerprint("POST", "/a", "", b"")


@pytest.mark.parametrize("key", ["a" * 8, "A-_9" * 2, "z" * 255])
def test_valid_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["a" * 7, "z" * 256, "a b c d e", "key\n12345", "ключ-ключ"])
def test_invalid_keys(key: str) -> None:
    with pytest.raises(Exception) as raised:
        check_key(key)
    assert getattr(raised.value, "key", None) == "invalid_idempotency_key"
