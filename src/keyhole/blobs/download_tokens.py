"""Signed, expiring download capabilities for blobs in the local store.

Token: ``base64url("1:<kid>:<blob id>:<expiry unix seconds>") "." base64url(HMAC-SHA256)``.
The MAC key is derived with HKDF-SHA256 from a vault master key (never the master key
itself), so a token reveals nothing and opens nothing but its one blob until it expires.
Tokens are signed with the primary master key and verified with whichever key they name,
so a master-key rotation does not break URLs already handed out.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from keyhole.errors import Forbidden, Gone
from keyhole.timestamps import timestamp
from keyhole.vault.derived import DerivedKeys, b64url, unb64url
from keyhole.vault.keyring import KeyRing

_VERSION = "1"
_INFO = b"keyhole/blob-download-url/v1"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,512}\.[A-Za-z0-9_-]{43}$")
_BLOB_ID = re.compile(r"^[0-9a-f-]{36}$")


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    blob_id: str
    expires_at: datetime


def _tampered() -> Forbidden:
    return Forbidden(
        "this download URL is not valid (altered, truncated or not issued by this server); "
        "ask the job again for a fresh bodyDownloadUrl",
        key="invalid_download_url",
    )


class DownloadSigner:
    def __init__(self, keyring: KeyRing) -> None:
        self._keys = DerivedKeys(keyring, _INFO)

    def sign(self, blob_id: str, expires_at: datetime) -> str:
        kid = self._keys.primary_kid
        key = self._keys.key(kid)
        assert key is not None
        payload = f"{_VERSION}:{kid}:{blob_id}:{int(expires_at.timestamp())}".encode()
        return f"{b64url(payload)}.{b64url(hmac.new(key, payload, hashlib.sha256).digest())}"

    def verify(self, token: str, now: datetime | None = None) -> DownloadGrant:
        """The grant a token carries; 403 when it was not issued here, 410 once it expired."""
        if not _TOKEN.match(token):
            raise _tampered()
        encoded_payload, encoded_mac = token.split(".")
        try:
            payload = unb64url(encoded_payload)
            mac = unb64url(encoded_mac)
            version, kid, blob_id, expiry = payload.decode("ascii").split(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _tampered() from None
        key = self._keys.key(kid) if version == _VERSION else None
        if key is None or not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
            raise _tampered()
        if not _BLOB_ID.match(blob_id) or not expiry.isdigit():
            raise _tampered()
        expires_at = datetime.fromtimestamp(int(expiry), UTC)
        if expires_at <= (now or datetime.now(UTC)):
            raise Gone(
                "this download URL has expired; fetch the job again for a fresh bodyDownloadUrl",
                key="download_url_expired",
                metadata={"expiredAt": timestamp(expires_at)},
            )
        return DownloadGrant(blob_id, expires_at)
