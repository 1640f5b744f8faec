"""The inline boundary of the HTTP tools (``proxy.spill``): a body of at most ``max_inline_bytes``
comes back inline, a longer one as a preview of its first bytes and a download URL of the whole;
a character split by the cut never makes the preview invalid text, and an echoed credential
split by the cut is scrubbed on both sides of it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from conftest import KeyholeServer

from .conftest import Org
from .support import SECRET, over_http, structured, text_of
from .support import download as fetch

INLINE = 1024  # the smallest max_inline_bytes a call may ask for
TAIL = "0123456789" * 20  # text after the boundary, so a spilled body goes on past it


def base64_path(text: str) -> str:
    """httpbin's ``/base64/<value>`` answers exactly these bytes, as text/html; charset=utf-8."""
    return "/base64/" + base64.urlsafe_b64encode(text.encode()).decode()


async def http_get(server: KeyholeServer, org: Org, arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    async with over_http(server.url + "/mcp", org.keys.bearer) as client:
        result = await client.call_tool("keyhole_http_get", {"connection": "billing", **arguments})
    return structured(result), text_of(result)


def download(answer: dict[str, Any]) -> bytes:
    """The whole body behind a spilled answer's URL, fetched with no credential at all."""
    assert answer["download"] is not None, answer
    return fetch(answer["download"]["url"]).content


@pytest.mark.parametrize("size", [INLINE - 1, INLINE])
async def test_a_body_up_to_the_bound_is_inline(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, size: int
) -> None:
    text = ("inline body " * 100)[:size]
    answer, _ = await http_get(mserver, acme, {"path": base64_path(text), "max_inline_bytes": INLINE})
    assert answer["status"] == 200 and answer["body_kind"] == "text"
    assert answer["body"] == text
    assert answer["size_bytes"] == size
    assert answer["truncated"] is False
    assert answer["download"] is None and answer["body_preview"] is None


@pytest.mark.parametrize("size", [INLINE + 1, INLINE + 2, 3 * INLINE])
async def test_a_longer_body_is_spilled_whole(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, size: int
) -> None:
    text = ("spilled body " * 400)[:size]
    answer, _ = await http_get(mserver, acme, {"path": base64_path(text), "max_inline_bytes": INLINE})
    assert answer["status"] == 200 and answer["body_kind"] == "text"
    assert answer["truncated"] is True
    assert answer["body"] is None
    assert answer["body_preview"] == text[:INLINE]  # exactly the first max_inline_bytes (ASCII)
    assert answer["size_bytes"] == size
    assert answer["download"]["size_bytes"] == size and answer["download"]["complete"] is True
    assert download(answer) == text.encode()


@pytest.mark.parametrize(
    ("character", "before_cut"),
    [(character, before) for character in ("é", "€", "😀") for before in range(1, len(character.encode()))],
)
async def test_a_character_split_by_the_cut_never_makes_invalid_text(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, character: str, before_cut: int
) -> None:
    # ``before_cut`` bytes of the character are within the bound, the rest past it.
    text = "a" * (INLINE - before_cut) + character + TAIL
    raw = text.encode()
    assert len(raw[:INLINE]) == INLINE and raw[INLINE - before_cut : INLINE] != character.encode()
    answer, _ = await http_get(mserver, acme, {"path": base64_path(text), "max_inline_bytes": INLINE})
    assert answer["body_kind"] == "text" and answer["truncated"] is True
    preview = answer["body_preview"]
    assert isinstance(preview, str)
    # The preview is valid text: the whole characters before the cut, never a broken one.
    assert preview == "a" * (INLINE - before_cut)
    assert "\ufffd" not in preview
    assert download(answer) == raw


@pytest.mark.parametrize("character", ["é", "€", "😀"])
async def test_a_character_ending_on_the_bound_stays_whole(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, character: str
) -> None:
    size = len(character.encode())
    text = "a" * (INLINE - size) + character
    inline, _ = await http_get(mserver, acme, {"path": base64_path(text), "max_inline_bytes": INLINE})
    assert inline["body"] == text and inline["truncated"] is False
    spilled, _ = await http_get(mserver, acme, {"path": base64_path(text + TAIL), "max_inline_bytes": INLINE})
    assert spilled["body_preview"] == text and spilled["truncated"] is True
    assert download(spilled) == (text + TAIL).encode()


# -- an echoed credential across the cut ----------------------------------------------------------

SECRET_PIECES = {SECRET[start : start + 6] for start in range(len(SECRET) - 5)}


def assert_no_piece_of_secret(where: str, text: str) -> None:
    """Neither the secret nor any 6 characters of it in a row (a prefix before the cut, a suffix
    after it, or anything between)."""
    leaked = sorted(piece for piece in SECRET_PIECES if piece in text)
    assert not leaked, f"{where} shows {leaked}"


async def _echo(server: KeyholeServer, org: Org, pad: int) -> tuple[dict[str, Any], str, bytes]:
    answer, shown = await http_get(
        server, org, {"path": "/anything", "query": {"pad": "p" * pad}, "max_inline_bytes": INLINE}
    )
    assert answer["status"] == 200 and answer["truncated"] is True, answer
    return answer, shown, download(answer)


MARKER = b'"Bearer [REDACTED]"'


@pytest.fixture(scope="module")
async def echo_offset(mserver: KeyholeServer, acme: Org, httpbin_connection: str) -> tuple[int, int]:
    """``(pad, offset)``: with a ``pad`` of that length the echoed credential (what follows
    ``"Bearer ``) starts ``offset`` bytes into httpbin's answer; each more byte of pad moves
    it one byte on (the pad is echoed in ``args``, before ``headers``)."""
    pad = 400  # long enough that the answer is past INLINE, short enough that the echo is before it
    _, _, whole = await _echo(mserver, acme, pad)
    assert whole.count(MARKER) == 1, whole
    return pad, whole.index(MARKER) + len('"Bearer ')


@pytest.mark.parametrize("into_secret", range(-2, len(SECRET) + 3))
async def test_an_echo_split_by_the_cut_is_scrubbed_on_both_sides(
    mserver: KeyholeServer, acme: Org, echo_offset: tuple[int, int], into_secret: int
) -> None:
    base_pad, base_offset = echo_offset
    # The secret starts ``INLINE - into_secret`` bytes in: the cut falls ``into_secret`` bytes into it.
    pad = base_pad + (INLINE - into_secret) - base_offset
    answer, shown, whole = await _echo(mserver, acme, pad)
    # The setup is what it claims: the echo (scrubbed) sits across the cut.
    assert whole.index(MARKER) + len('"Bearer ') == INLINE - into_secret
    assert json.loads(whole)["args"]["pad"] == "p" * pad
    assert json.loads(whole)["headers"]["Authorization"] == "Bearer [REDACTED]"
    preview = answer["body_preview"]
    assert isinstance(preview, str) and len(preview.encode()) == INLINE
    assert preview.encode() == whole[:INLINE]
    for where, text in (("the preview", preview), ("the whole body", whole.decode()), ("the result", shown)):
        assert SECRET not in text
        assert_no_piece_of_secret(where, text)
