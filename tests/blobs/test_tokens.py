"""The download token signer on its own: round trip, expiry, tampering, key rotation."""

from __future__ import annotations

import string
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyhole.blobs import DownloadSigner
from keyhole.errors import Forbidden, Gone
from keyhole.vault import KeyRing
from keyhole.vault.keyring import generate_key


def test_round_trip_and_expiry(tmp_path: Path) -> None:
    signer = DownloadSigner(KeyRing.load(None, tmp_path / "keys"))
    blob_id = str(uuid.uuid4())
    expires = datetime.now(UTC) + timedelta(minutes=5)
    token = signer.sign(blob_id, expires)
    grant = signer.verify(token)
    assert grant.blob_id == blob_id
    assert int(grant.expires_at.timestamp()) == int(expires.timestamp())
    with pytest.raises(Gone) as expired:
        signer.verify(token, now=expires + timedelta(seconds=1))
    assert expired.value.key == "download_url_expired"


@pytest.mark.parametrize("position", [0, 5, 20, -1, -10])
def test_any_altered_character_is_refused(tmp_path: Path, position: int) -> None:
    signer = DownloadSigner(KeyRing.load(None, tmp_path / "keys"))
    token = signer.sign(str(uuid.uuid4()), datetime.now(UTC) + timedelta(minutes=5))
    index = position % len(token)
    if token[index] == ".":
        index += 1
    altered = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
    with pytest.raises(Forbidden):
        signer.verify(altered)


def test_only_the_canonical_spelling_of_a_token_verifies(tmp_path: Path) -> None:
    """The last base64url character carries unused bits: a variant that decodes to the same MAC
    is still refused, so a signed token has exactly one valid spelling."""
    signer = DownloadSigner(KeyRing.load(None, tmp_path / "keys"))
    token = signer.sign(str(uuid.uuid4()), datetime.now(UTC) + timedelta(minutes=5))
    payload, mac = token.split(".")
    for char in string.ascii_letters + string.digits + "-_":
        variant = f"{payload}.{mac[:-1]}{char}"
        if variant == token:
            assert signer.verify(variant)
            continue
        with pytest.raises(Forbidden):
            signer.verify(variant)


def test_rotation_keeps_old_tokens_and_signs_with_the_new_key(tmp_path: Path) -> None:
    keyring = KeyRing.load(None, tmp_path / "keys")
    signer = DownloadSigner(keyring)
    old = signer.sign(str(uuid.uuid4()), datetime.now(UTC) + timedelta(minutes=5))
    keyring.add_primary(generate_key("knew"))
    assert signer.verify(old)
    fresh = signer.sign(str(uuid.uuid4()), datetime.now(UTC) + timedelta(minutes=5))
    assert signer.verify(fresh)
    other = DownloadSigner(KeyRing.load(None, tmp_path / "other-keys"))
    with pytest.raises(Forbidden):
        other.verify(fresh)
