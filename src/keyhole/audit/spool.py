"""A local append-only file of audit records not yet in the store.

A call's record is appended here (one ``write``, no fsync) before the call answers, then written
to the store with the next batch. What a process wrote reaches the file even if the process is
killed with SIGKILL a microsecond later: the kernel holds it. Each process writes its own
segments and holds an exclusive ``flock`` on them; a segment whose lock can be taken belongs to
a process that died, and the next process to start on the same home (or the next flush of a
running one) stores its records and deletes it. The store ignores records it already has.
A lost machine or disk loses what was not yet stored; that is the limit of this design.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson

from keyhole.audit.records import CallRecord

_SUFFIX = ".jsonl"
_FIELDS_BEFORE_SHARING = len(CallRecord._fields) - 1


class AuditSpool:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._sequence = 0
        self._fd: int | None = None
        self._segment: Path | None = None
        self._sealed: dict[Path, int] = {}  # rotated segments awaiting their store write → fd

    def append(self, record: CallRecord) -> None:
        if self._fd is None:
            self._open()
        assert self._fd is not None
        os.write(self._fd, _encode(record))

    def rotate(self) -> None:
        """Start a new segment; the current one waits until :meth:`stored` says its records are in
        the store (the caller's batch holds every record appended so far)."""
        if self._fd is not None and self._segment is not None:
            self._sealed[self._segment] = self._fd
            self._fd = self._segment = None

    def stored(self) -> None:
        """Every sealed segment's records are in the store: delete the segments."""
        for segment, fd in self._sealed.items():
            with contextlib.suppress(FileNotFoundError):
                segment.unlink()
            os.close(fd)
        self._sealed.clear()

    def orphans(self) -> Iterator[list[CallRecord]]:
        """The records of each segment left by a dead process; the segment is deleted once the
        caller's iteration moves past it (so only after the caller stored them)."""
        if not self._directory.is_dir():
            return
        mine = {self._segment, *self._sealed}
        for segment in sorted(self._directory.glob(f"*{_SUFFIX}")):
            if segment in mine:
                continue
            try:
                fd = os.open(segment, os.O_RDONLY)
            except FileNotFoundError:
                continue  # another process took it
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer is alive
                if not segment.exists():
                    continue  # stored and deleted by another process before we locked it
                yield _decode(segment.read_bytes())
                segment.unlink()
            finally:
                os.close(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = self._segment = None

    def _open(self) -> None:
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._sequence += 1
        segment = self._directory / f"{self._name}-{self._sequence}{_SUFFIX}"
        fd = os.open(segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd, self._segment = fd, segment


def _encode(record: CallRecord) -> bytes:
    return orjson.dumps([*record[:-1], record.created_at.isoformat()]) + b"\n"


def _decode(data: bytes) -> list[CallRecord]:
    records = []
    for line in data.splitlines():
        try:
            fields = orjson.loads(line)
            if len(fields) == _FIELDS_BEFORE_SHARING:  # spooled by a release without shared copies
                fields.insert(CallRecord._fields.index("parent_connection_id"), None)
            records.append(CallRecord._make([*fields[:-1], datetime.fromisoformat(fields[-1])]))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            continue  # the last line of a process killed mid-write
    return records
