"""Reading an upstream body as a stream, capped, with failures translated to domain errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

from keyhole.egress.client import UpstreamResponse


class CappedBody:
    """Iterate over at most ``cap`` bytes of a response body, one chunk in memory at a time.

    After iteration, ``read`` is the number of bytes yielded and ``truncated`` tells whether the
    upstream had more (reading stopped there; the rest is never downloaded).
    """

    def __init__(self, response: UpstreamResponse, cap: int) -> None:
        self._response = response
        self._cap = cap
        self.read = 0
        self.truncated = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.iter_chunks():
            room = self._cap - self.read
            if len(chunk) > room:
                self.truncated = True
                if room > 0:
                    self.read += room
                    yield chunk[:room]
                return
            self.read += len(chunk)
            yield chunk
