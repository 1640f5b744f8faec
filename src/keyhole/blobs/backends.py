"""Which object store holds the blobs: a directory under the home, or S3-compatible storage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from obstore.store import LocalStore, ObjectStore, S3Store

from keyhole.blobs.uploads import LocalPartials, S3Uploads, UploadSweeper
from keyhole.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Backend:
    store: ObjectStore
    local: bool  # True: Keyhole serves downloads itself; False: the store presigns them
    description: str
    uploads: UploadSweeper  # finds the incomplete uploads of writers that died


def open_backend(blob_url: str | None, home: Path) -> Backend:
    """``None`` → ``<home>/blobs``; ``s3://bucket/prefix`` → S3 with the standard ``AWS_*``
    environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``…);
    ``file:///absolute/dir`` → that directory."""
    if blob_url is not None and blob_url.startswith(("s3://", "s3a://")):
        store = S3Store.from_url(blob_url)
        uploads = S3Uploads.from_environment(store.config["bucket"], store.prefix)
        return Backend(store, local=False, description=blob_url, uploads=uploads)
    root = local_root(blob_url, home)
    if root is None:
        raise InvalidRequest(
            "KEYHOLE_BLOB_URL must be s3://bucket/prefix or file:///absolute/directory",
            key="invalid_configuration",
        )
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Backend(
        LocalStore(prefix=root, mkdir=True), local=True, description=str(root), uploads=LocalPartials(root)
    )


def local_root(blob_url: str | None, home: Path) -> Path | None:
    """The directory of a local blob store; None when the blobs live elsewhere."""
    if blob_url is None:
        return (home / "blobs").resolve()
    if blob_url.startswith("file://"):
        return Path(blob_url.removeprefix("file://")).resolve()
    return None
