"""Reading an upstream body as a stream, capped, with failures translated to domain errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from keyhole.egress.failures import upstream_error

CHUNK = 64 * 1024
_CAUGHT = (aiohttp.ClientError, OSError)  # OSError covers TimeoutError


class CappedBody:
    """Iterate over at most ``cap`` bytes of a response body, one chunk in memory at a time.

    After iteration, ``read`` is the number of bytes yielded and ``truncated`` tells whether the
    upstream had more (reading stopped there; the rest is never downloaded).
    """

    def __init__(self, response: aiohttp.ClientResponse, cap: int) -> None:
        self._response = response
        self._cap = cap
        self.read = 0
        self.truncated = False

    async def chunks(self) -> AsyncIterator[bytes]:
        response = self._response
        try:
            async for chunk in response.content.iter_chunked(CHUNK):
                room = self._cap - self.read
                if len(chunk) > room:
                    self.truncated = True
                    if room > 0:
                        self.read += room
                        yield chunk[:room]
                    return
                self.read += len(chunk)
                yield chunk
        except _CAUGHT as exc:
            raise upstream_error(exc, response.url.raw_host, response.url.port) from None
