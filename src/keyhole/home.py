"""KEYHOLE_HOME and every other file Keyhole keeps: private to the service account.

Directories are 0700 and files 0600. What Keyhole opens itself is created with that mode here,
before any library touches it: the home, the SQLite database (SQLite gives its ``-wal``,
``-shm`` and ``-journal`` files the database file's mode), the local blob directory and the
default SQL file root. Files that libraries create later (obstore's blob objects and staging
files) follow the process umask, which the ``keyhole`` command sets to ``PRIVATE_UMASK``; the
0700 directories keep them out of other accounts' reach in any case. What a previous version
made, or a hand loosened, is tightened on every start.

The operator's database files under ``KEYHOLE_SQL_FILE_ROOT``, and anything else an operator
keeps in the home, are not Keyhole's: their modes are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from keyhole.blobs.backends import local_root
from keyhole.settings import Settings

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077  # also the group and other permission bits that tightening takes off
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def prepare_home(settings: Settings) -> None:
    """Create what is missing privately and tighten what exists; call before the database opens.

    Only what Keyhole keeps is tightened: the home directory, the database files, the key file,
    the local blob tree, the audit spool, and the SQL file root's directory (not its files) when
    it is in the home.
    """
    home = settings.home.resolve()
    sql_root = settings.resolved_sql_file_root
    private_dir(home)
    tighten(home)
    database = sqlite_path(settings.resolved_database_url)
    if database is not None:
        private_dir(database.parent)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        for path in (database, *(database.with_name(database.name + end) for end in SQLITE_COMPANIONS)):
            tighten(path)
    key_file = settings.key_file.resolve()
    tighten(key_file)
    tighten(key_file.with_name(key_file.name + ".tmp"))  # one left by a crash holds keys too
    if settings.audit_spool.exists():  # segments a crashed process left (audit records)
        tighten_tree(settings.audit_spool)
    blobs = local_root(settings.blob_url, home)
    if blobs is not None:
        private_dir(blobs)
        tighten_tree(blobs, keep=sql_root)
    private_dir(sql_root)
    if sql_root.is_relative_to(home):
        tighten(sql_root)


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases and in-memory SQLite."""
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename: SQLite itself decides what it opens
        return None
    return Path(database).resolve()


def private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700; existing ones are left as they are."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it in between
            directory.mkdir(mode=PRIVATE_DIR)


def tighten_tree(root: Path, *, keep: Path | None = None) -> None:
    """Take group and other permissions off ``root`` and everything below it. Inside ``keep``
    nothing is touched (the directory itself is, when it lies under ``root``)."""
    tighten(root)
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory)
        if here == keep:
            subdirectories.clear()
            continue
        for name in (*subdirectories, *files):
            tighten(here / name)


def tighten(path: Path) -> None:
    """Take group and other permissions off one file or directory (symbolic links are skipped)."""
    try:
        info = path.lstat()
    except FileNotFoundError:  # absent, or gone since it was listed (a purged blob, a renamed upload)
        return
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode) or not mode & PRIVATE_UMASK:
        return
    try:
        path.chmod(mode & ~PRIVATE_UMASK)
    except FileNotFoundError:
        return
    except OSError as error:  # another account's file, a read-only mount: say so, keep serving
        logger.warning("could not make %s private: %s", path, error.strerror)
