"""The truncation oracle, end to end through the synchronous Polytomic proxy.

An upstream that says what it is told (here ``LocalUpstream``'s ``/reflect``; in the wild any API
that echoes a parameter) lets a caller end a capped answer with a guess. When only a trailing
*prefix of the secret* was withheld, the answer's length said whether the guess was right, one
character at a time. A cut answer now always loses the same tail, so a right and a wrong guess
give the same answer, byte for byte, and so does every byte count the caller can read."""

from __future__ import annotations

import base64
import string
from typing import Any

import pytest

from keyhole.vault.scrub import Scrubber

from .support import TOKEN, Gateway, LocalUpstream, guess_at_cap, reflect_query

CAP = 1024
TAIL = Scrubber.of([TOKEN]).tail
WRONG = "#"


@pytest.fixture(scope="module")
def connection(gw_a: Gateway, upstream: LocalUpstream) -> str:
    return gw_a.create(
        upstream.url(),
        auth={"type": "bearer", "token": TOKEN},
        proxy={"max_response_body_bytes": CAP, "rate_limit_per_minute": 100_000},
    )


def probe(gw: Gateway, connection: str, guess: str, content_type: str = "text/plain") -> dict[str, Any]:
    data = gw.ok(
        connection,
        method="GET",
        path="/reflect",
        query=reflect_query(guess_at_cap(guess, CAP), content_type),
    )
    assert data["truncated"] is True
    return {key: data[key] for key in ("status", "body", "bodyEncoding", "contentType", "truncated")}


def _bytes(answer: dict[str, Any]) -> bytes:
    if answer["bodyEncoding"] == "base64":
        return base64.b64decode(answer["body"])
    return str(answer["body"]).encode()


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream"])
@pytest.mark.parametrize("length", [1, 4, len(TOKEN) // 2, len(TOKEN) - 1])
def test_a_prefix_guess_and_a_wrong_guess_get_the_same_answer(
    gw_a: Gateway, connection: str, content_type: str, length: int
) -> None:
    right = probe(gw_a, connection, TOKEN[:length], content_type)
    wrong = probe(gw_a, connection, WRONG * length, content_type)
    case = probe(gw_a, connection, TOKEN[:length].swapcase(), content_type)
    assert right == wrong == case
    assert _bytes(right) == guess_at_cap(WRONG * length, CAP)[: CAP - TAIL]


def test_byte_counts_do_not_tell_either(gw_a: Gateway, connection: str) -> None:
    probe(gw_a, connection, TOKEN[:10])
    probe(gw_a, connection, WRONG * 10)
    right, wrong = gw_a.calls(connection, limit=2)["data"]
    assert right["bytesOut"] == wrong["bytesOut"] == CAP - TAIL
    assert right["truncated"] is wrong["truncated"] is True


def test_an_attacker_learns_nothing_character_by_character(gw_a: Gateway, connection: str) -> None:
    """The attack as it was run: try every next character and keep the one whose answer differs.
    Every candidate now gets the same answer, so there is nothing to keep; the loop goes on with
    the true character (as if it had been guessed) to show that no later position leaks either."""
    alphabet = string.ascii_letters + string.digits + "_-"
    known = ""
    for position in range(3):
        answers = {candidate: probe(gw_a, connection, known + candidate) for candidate in alphabet}
        distinct = {repr(answer) for answer in answers.values()}
        assert len(distinct) == 1, f"position {position}: the answers tell candidates apart"
        known += TOKEN[position]
