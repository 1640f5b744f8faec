"""SQLite and DuckDB files may only live under ``KEYHOLE_SQL_FILE_ROOT``.

A caller must never be able to open an arbitrary file of the server, so the path is
resolved (symlinks included) and must stay inside the root.
"""

from __future__ import annotations

from pathlib import Path

from keyhole.errors import Unprocessable


def resolve_sql_file(path: str, root: Path) -> Path:
    if "\x00" in path:
        raise _outside("the path contains a NUL character")
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise _outside(f"the path must lie under KEYHOLE_SQL_FILE_ROOT ({root})")
    return resolved


def _outside(reason: str) -> Unprocessable:
    return Unprocessable(
        f"invalid database file path: {reason}",
        key="invalid_configuration",
        metadata={"errors": [{"field": "/path", "message": reason}]},
    )
