"""Echo scrubbing for bodies that arrive as a stream (async proxy calls).

A secret may be split across two chunks, so the last ``len(longest secret) - 1`` bytes of
what has been seen are held back until the next chunk (or the end) shows whether they start
a secret. Memory stays at one chunk plus that carry-over, whatever the body's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from keyhole.proxy import contract

_REDACTED = contract.REDACTED.encode()


class StreamScrubber:
    """Replaces secrets leftmost-first (the longest form at a position) across chunk boundaries.

    Bytes in which a secret could still *start* but not yet end are held back, raw, until the
    next chunk shows how they continue; so a short form is never replaced inside a longer form
    that the next chunk completes.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        forms = sorted({secret.encode() for secret in secrets if secret}, key=len, reverse=True)
        self._secrets = forms
        self._keep = max((len(form) for form in forms), default=1) - 1
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        """Scrub ``chunk`` (after the held-back bytes); returns the bytes that are now final."""
        data = self._carry + chunk
        limit = len(data) - self._keep
        if limit <= 0:
            self._carry = data
            return b""
        out, consumed = self._scrub(data, limit)
        self._carry = data[consumed:]
        return out

    def finish(self, *, truncated: bool) -> bytes:
        """The held-back tail. When the body was cut, a partial secret at the cut is dropped too."""
        data, self._carry = self._carry, b""
        if truncated:  # the held-back bytes are raw, so the longest partial secret is still whole here
            cut = max(
                (
                    length
                    for secret in self._secrets
                    for length in range(min(len(secret) - 1, len(data)), 0, -1)
                    if data.endswith(secret[:length])
                ),
                default=0,
            )
            data = data[: len(data) - cut]
        return self._scrub(data, len(data))[0]

    def _scrub(self, data: bytes, limit: int) -> tuple[bytes, int]:
        """Replace every secret that starts before ``limit``; returns the output and how much of
        ``data`` it covers (``limit``, or further when the last secret ran past it)."""
        out: list[bytes] = []
        position = 0
        found = {secret: data.find(secret) for secret in self._secrets}
        while True:
            best: tuple[int, bytes] | None = None
            for secret in self._secrets:  # longest first: at equal positions the longer wins
                at = found[secret]
                if 0 <= at < position:
                    at = found[secret] = data.find(secret, position)
                if 0 <= at < limit and (best is None or at < best[0]):
                    best = (at, secret)
            if best is None:
                break
            at, secret = best
            out.append(data[position:at])
            out.append(_REDACTED)
            position = at + len(secret)
        consumed = max(position, limit)
        out.append(data[position:consumed])
        return b"".join(out), consumed


async def scrubbed(
    chunks: AsyncIterator[bytes], secrets: Sequence[str], truncated: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """``chunks`` with every echoed secret replaced by ``[REDACTED]``; ``truncated()`` is asked at
    the end whether the source was cut at a cap."""
    scrubber = StreamScrubber(secrets)
    async for chunk in chunks:
        safe = scrubber.feed(chunk)
        if safe:
            yield safe
    tail = scrubber.finish(truncated=truncated())
    if tail:
        yield tail
