"""Master keys: parsed from ``KEYHOLE_MASTER_KEYS`` or kept in a 0600 key file under the home.

Format, in both places: ``kid:base64(32 bytes)`` entries separated by commas or newlines.
The first entry encrypts; every entry decrypts. Rotation adds a key in front, re-encrypts
every row, and the old entry can then be deleted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class KeyRingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class MasterKey:
    kid: str
    key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"MasterKey(kid={self.kid!r})"

    def serialize(self) -> str:
        return f"{self.kid}:{base64.b64encode(self.key).decode()}"


def generate_key(kid: str | None = None) -> MasterKey:
    return MasterKey(kid or f"k{secrets.token_hex(4)}", secrets.token_bytes(32))


def parse_keys(text: str) -> list[MasterKey]:
    keys: list[MasterKey] = []
    for raw in re.split(r"[,\n]", text):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        kid, sep, material = entry.partition(":")
        if not sep or not _KID.match(kid):
            raise KeyRingError("master key entries look like kid:base64key (kid: letters, digits, - and _)")
        try:
            key = base64.b64decode(material, validate=True)
        except binascii.Error:
            raise KeyRingError(f"master key {kid!r} is not valid base64") from None
        if len(key) != 32:
            raise KeyRingError(f"master key {kid!r} must decode to 32 bytes, got {len(key)}")
        if any(existing.kid == kid for existing in keys):
            raise KeyRingError(f"master key id {kid!r} appears twice")
        keys.append(MasterKey(kid, key))
    if not keys:
        raise KeyRingError("no master key given")
    return keys


class KeyRing:
    """The keys in force. A file-backed ring re-reads its file when it meets an unknown key id,
    so a running server picks up a rotation done by another process."""

    def __init__(self, keys: list[MasterKey], *, file: Path | None = None) -> None:
        self._keys = keys
        self._by_kid = {key.kid: key for key in keys}
        self.file = file
        self._file_mtime = file.stat().st_mtime_ns if file is not None and file.exists() else 0

    @property
    def primary(self) -> MasterKey:
        # Encrypting is rare (writes only), so checking the file here keeps a running server's
        # new ciphertexts under the key a concurrent `rotate-master` just put in front.
        self._reload_if_changed()
        return self._keys[0]

    @property
    def kids(self) -> list[str]:
        return [key.kid for key in self._keys]

    def find(self, kid: str) -> MasterKey | None:
        key = self._by_kid.get(kid)
        if key is None:
            self._reload_if_changed()
            key = self._by_kid.get(kid)
        return key

    def _reload_if_changed(self) -> None:
        if self.file is None:
            return
        try:
            mtime = self.file.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self._file_mtime:
            self._replace(parse_keys(self.file.read_text()))
            self._file_mtime = mtime

    def _replace(self, keys: list[MasterKey]) -> None:
        self._keys = keys
        self._by_kid = {key.kid: key for key in keys}

    def add_primary(self, key: MasterKey) -> None:
        """Put a new key in front; the file, if any, is rewritten atomically with mode 0600."""
        self._replace([key, *[existing for existing in self._keys if existing.kid != key.kid]])
        if self.file is not None:
            write_key_file(self.file, self._keys)
            self._file_mtime = self.file.stat().st_mtime_ns

    def remove(self, kid: str) -> None:
        if kid == self.primary.kid:
            raise KeyRingError("the primary key cannot be removed; rotate first")
        if kid not in self._by_kid:
            raise KeyRingError(f"no master key {kid!r}")
        self._replace([key for key in self._keys if key.kid != kid])
        if self.file is not None:
            write_key_file(self.file, self._keys)
            self._file_mtime = self.file.stat().st_mtime_ns

    @classmethod
    def load(cls, master_keys: str | None, key_file: Path) -> KeyRing:
        if master_keys:
            return cls(parse_keys(master_keys))
        if key_file.exists():
            return cls(parse_keys(key_file.read_text()), file=key_file)
        key = generate_key()
        write_key_file(key_file, [key])
        logger.warning(
            "generated a master key in %s (mode 0600); back it up, or set KEYHOLE_MASTER_KEYS",
            key_file,
        )
        return cls([key], file=key_file)


def write_key_file(path: Path, keys: list[MasterKey]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    # A fresh file, never one left by a crash: that one could have another mode, or be held open.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(key.serialize() for key in keys) + "\n")
    os.replace(temporary, path)
