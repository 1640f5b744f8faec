"""Pure pieces of the job system and the async proxy, tested on their own."""

from __future__ import annotations

import itertools

import pytest
from croniter import croniter

from keyhole.idempotency import check_key, fingerprint
from keyhole.jobs.engines.procrastinate import _every, libpq_conninfo, psycopg_url
from keyhole.proxy.scrub_stream import StreamScrubber

SECRETS = ("s3cr3t-TOKEN-value", "s3cr3t")  # one form contains another, as echo forms do


def scrub_in_pieces(body: bytes, cuts: list[int], *, truncated: bool = False) -> bytes:
    scrubber = StreamScrubber(SECRETS)
    out, start = [], 0
    for cut in [*cuts, len(body)]:
        out.append(scrubber.feed(body[start:cut]))
        start = cut
    out.append(scrubber.finish(truncated=truncated))
    return b"".join(out)


def test_a_secret_split_at_any_point_is_scrubbed() -> None:
    body = b"head " + SECRETS[0].encode() + b" middle " + SECRETS[1].encode() + b" tail"
    expected = b"head [REDACTED] middle [REDACTED] tail"
    for cut in range(len(body) + 1):
        assert scrub_in_pieces(body, [cut]) == expected, cut
    for first, second in itertools.combinations(range(0, len(body), 3), 2):
        assert scrub_in_pieces(body, [first, second]) == expected, (first, second)


def test_one_byte_chunks() -> None:
    body = (b"x" + SECRETS[0].encode()) * 5
    assert scrub_in_pieces(body, list(range(1, len(body)))) == b"x[REDACTED]" * 5


def test_a_partial_secret_at_a_cut_is_dropped() -> None:
    body = b"data " + SECRETS[0].encode()[:9]  # "s3cr3t-TO": a whole short form, or the long one cut
    assert scrub_in_pieces(body, [3], truncated=True) == b"data "
    assert scrub_in_pieces(body, [3], truncated=False) == b"data [REDACTED]-TO"
    assert scrub_in_pieces(b"data s3c", [6], truncated=True) == b"data "


def test_no_secrets_passes_bytes_through() -> None:
    scrubber = StreamScrubber(())
    assert scrubber.feed(b"abc") == b"abc"
    assert scrubber.finish(truncated=True) == b""


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
