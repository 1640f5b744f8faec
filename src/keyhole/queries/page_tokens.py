"""Page tokens: opaque, URL-safe, bound to one query, and impossible to forge.

``base64url(version ‖ page (4 bytes) ‖ kid) "." base64url(HMAC-SHA256(key, query id ‖ payload)[:16])``

The MAC key is derived with HKDF from a vault master key, so a token reveals nothing but is
checked in constant time; signing uses the primary master key and verification the key the
token names, so tokens outlive a master-key rotation (until the old key is removed). Tokens
never expire by themselves: they are valid as long as the query's results are.
Only base64url characters and ``.``, so percent-encoding leaves them unchanged.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from urllib.parse import unquote

from keyhole.errors import InvalidRequest
from keyhole.vault.derived import DerivedKeys, b64url, unb64url
from keyhole.vault.keyring import KeyRing

_VERSION = 1
_INFO = b"keyhole/query-page-token/v1"
_MAC_BYTES = 16
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,200}\.[A-Za-z0-9_-]{22}$")


def invalid_token() -> InvalidRequest:
    return InvalidRequest(
        "the page token is not valid for this query (altered, truncated or not issued by this "
        "server); follow links.next / links.previous exactly as returned",
        key="invalid_page_token",
        metadata={"field": "page"},
    )


class PageTokens:
    def __init__(self, keyring: KeyRing) -> None:
        self._keys = DerivedKeys(keyring, _INFO)

    @staticmethod
    def _mac(key: bytes, query_id: str, payload: bytes) -> bytes:
        return hmac.new(key, query_id.encode() + b"\x00" + payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, query_id: str, page: int) -> str:
        kid = self._keys.primary_kid
        key = self._keys.key(kid)
        assert key is not None
        payload = bytes([_VERSION]) + page.to_bytes(4, "big") + kid.encode()
        return f"{b64url(payload)}.{b64url(self._mac(key, query_id, payload))}"

    def verify(self, query_id: str, token: str) -> int:
        """The page number a token carries; ``InvalidRequest`` (400) when it is not genuine."""
        if "%" in token:  # percent-encoded twice on the way: decode the second layer
            token = unquote(token)
        if not _TOKEN.match(token):
            raise invalid_token()
        encoded_payload, encoded_mac = token.split(".")
        try:
            payload = unb64url(encoded_payload)
            mac = unb64url(encoded_mac)
            kid = payload[5:].decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_token() from None
        if len(payload) < 6 or payload[0] != _VERSION:
            raise invalid_token()
        key = self._keys.key(kid)
        if key is None or not hmac.compare_digest(mac, self._mac(key, query_id, payload)):
            raise invalid_token()
        return int.from_bytes(payload[1:5], "big")
