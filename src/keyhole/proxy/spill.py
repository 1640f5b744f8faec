"""Answers too large to return inline, kept whole in the blob store behind a download URL.

A call made with a :class:`Spill` reads at most ``inline_bytes`` of the (scrubbed) body into
memory. A body that ends within that bound comes back inline as usual; a longer one streams,
from its first byte, into the spill's sink (capped at the connection's ``max_async_body_bytes``,
like every body that goes to the blob store) and the caller gets its first ``inline_bytes`` as a
preview beside the URL of the whole. So an agent sees a bounded answer and can still fetch
everything, and memory holds one inline buffer and one chunk whatever the body's size.
``store`` is the one write of an answer's stream to a sink, also a binary answer's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from keyhole.errors import KeyholeError
from keyhole.proxy.binary import BinaryBody, BinarySink
from keyhole.proxy.upstream import Answer, BodyStream


@dataclass(frozen=True, slots=True)
class Spill:
    inline_bytes: int
    sink: BinarySink


@dataclass(frozen=True, slots=True)
class SpilledBody:
    head: bytes  # the whole body when ``stored`` is None, else its first ``inline_bytes``
    stored: BinaryBody | None
    truncated: bool  # the upstream had more than the cap of what was kept
    size: int  # bytes kept (inline or stored), as the caller gets them


async def read_or_spill(
    answer: Answer, spill: Spill, cap: int, *, organization_id: str, call_id: str
) -> SpilledBody:
    body = answer.stream(cap)
    chunks = body.chunks()
    buffered = bytearray()
    try:
        async for chunk in chunks:
            buffered += chunk
            if len(buffered) > spill.inline_bytes:
                break
        else:
            return SpilledBody(bytes(buffered), None, body.truncated, body.size)
    except BaseException:
        await chunks.aclose()
        raise

    async def whole() -> AsyncIterator[bytes]:
        yield bytes(buffered)
        async for rest in chunks:
            yield rest

    try:
        stored = await store(
            body,
            whole(),
            spill.sink,
            content_type=answer.content_type,
            organization_id=organization_id,
            call_id=call_id,
        )
    finally:
        await chunks.aclose()
    return SpilledBody(bytes(buffered[: spill.inline_bytes]), stored, body.truncated, body.size)


async def store(
    body: BodyStream,
    chunks: AsyncIterator[bytes],
    sink: BinarySink,
    *,
    content_type: str,
    organization_id: str,
    call_id: str,
) -> BinaryBody:
    """``chunks`` of ``body`` written by ``sink``; an upstream that broke off is reported as
    such, not as the write it aborted."""
    try:
        return await sink(chunks, content_type=content_type, organization_id=organization_id, call_id=call_id)
    except KeyholeError:
        if body.failure is not None:
            raise body.failure from None
        raise
