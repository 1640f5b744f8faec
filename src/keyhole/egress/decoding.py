"""Content-Encoding decoding of upstream bodies: gzip and deflate, streamed and bounded.

Only a single known coding is decoded; anything else (``br``, ``x-gzip``, stacked codings) is
passed on undecoded and reported by ``proxy.response.opaque_coding``. Output is produced in
pieces of at most ``_PIECE`` bytes, so a small compressed chunk cannot expand into a large
allocation (a decompression bomb costs CPU, never memory).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from keyhole.egress.http1 import UpstreamBodyError

DECODED_CODINGS = frozenset({"identity", "gzip", "deflate"})
ACCEPT_ENCODING = "gzip, deflate"
_PIECE = 64 * 1024


class BodyDecoder:
    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._zlib: zlib._Decompress | None = None
        if coding == "gzip":
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def decode(self, data: bytes) -> Iterator[bytes]:
        decompressor = self._zlib
        if decompressor is None:
            # "deflate" is meant to be zlib-wrapped, but servers also send raw deflate.
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            decompressor = self._zlib = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            piece = decompressor.decompress(data, _PIECE)
            while True:
                if piece:
                    yield piece
                tail = decompressor.unconsumed_tail
                if not tail:
                    return
                piece = decompressor.decompress(tail, _PIECE)
        except zlib.error as exc:
            raise UpstreamBodyError(f"invalid {self._coding} body: {exc}") from None

    def flush(self) -> bytes:
        if self._zlib is None:
            return b""
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise UpstreamBodyError(f"invalid {self._coding} body: {exc}") from None


def decoder_for(codings: list[str]) -> BodyDecoder | None:
    """A decoder when the answer carries exactly one Content-Encoding that is gzip or deflate."""
    if len(codings) != 1:
        return None
    coding = codings[0].lower()
    if coding in ("gzip", "deflate"):
        return BodyDecoder(coding)
    return None
