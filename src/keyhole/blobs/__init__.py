"""Blobs: streamed object storage (local directory or S3) with expiry and download URLs."""

from keyhole.blobs.backends import Backend, open_backend
from keyhole.blobs.store import BlobRef, BlobStore, BlobStoreUnavailable, Download
from keyhole.blobs.tokens import DownloadSigner

__all__ = [
    "Backend",
    "BlobRef",
    "BlobStore",
    "BlobStoreUnavailable",
    "Download",
    "DownloadSigner",
    "open_backend",
]
