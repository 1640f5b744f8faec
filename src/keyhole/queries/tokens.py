"""Page tokens: opaque, URL-safe, bound to one query, and impossible to forge.

``base64url(version ‖ page (4 bytes) ‖ kid) "." base64url(HMAC-SHA256(key, query id ‖ payload)[:16])``

The MAC key is derived with HKDF from a vault master key, so a token reveals nothing but is
checked in constant time; signing uses the primary master key and verification the key the
token names, so tokens outlive a master-key rotation (until the old key is removed). Tokens
never expire by themselves: they are valid as long as the query's results are.
Only base64url characters and ``.``, so percent-encoding leaves them unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from urllib.parse import unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyhole.errors import InvalidRequest
from keyhole.vault.keyring import KeyRing

_VERSION = 1
_INFO = b"keyhole/query-page-token/v1"
_MAC_BYTES = 16
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,200}\.[A-Za-z0-9_-]{22}$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def invalid_token() -> InvalidRequest:
    return InvalidRequest(
        "the page token is not valid for this query (altered, truncated or not issued by this "
        "server); follow links.next / links.previous exactly as returned",
        key="invalid_page_token",
        metadata={"field": "page"},
    )


class PageTokens:
    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._derived: dict[tuple[str, bytes], bytes] = {}

    def _key(self, kid: str) -> bytes | None:
        master = self._keyring.find(kid)
        if master is None:
            return None
        cache_key = (kid, hashlib.sha256(master.key).digest())
        derived = self._derived.get(cache_key)
        if derived is None:
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(master.key)
            self._derived[cache_key] = derived
        return derived

    @staticmethod
    def _mac(key: bytes, query_id: str, payload: bytes) -> bytes:
        return hmac.new(key, query_id.encode() + b"\x00" + payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, query_id: str, page: int) -> str:
        kid = self._keyring.primary.kid
        key = self._key(kid)
        assert key is not None
        payload = bytes([_VERSION]) + page.to_bytes(4, "big") + kid.encode()
        return f"{_b64(payload)}.{_b64(self._mac(key, query_id, payload))}"

    def verify(self, query_id: str, token: str) -> int:
        """The page number a token carries; ``InvalidRequest`` (400) when it is not genuine."""
        if "%" in token:  # percent-encoded twice on the way: decode the second layer
            token = unquote(token)
        if not _TOKEN.match(token):
            raise invalid_token()
        encoded_payload, encoded_mac = token.split(".")
        try:
            payload = _unb64(encoded_payload)
            mac = _unb64(encoded_mac)
            kid = payload[5:].decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_token() from None
        if len(payload) < 6 or payload[0] != _VERSION:
            raise invalid_token()
        key = self._key(kid)
        if key is None or not hmac.compare_digest(mac, self._mac(key, query_id, payload)):
            raise invalid_token()
        return int.from_bytes(payload[1:5], "big")
