"""Blobs: streamed object storage (local directory or S3) with expiry and download URLs."""

from keyhole.blobs.backends import Backend, open_backend
from keyhole.blobs.download_tokens import DownloadSigner
from keyhole.blobs.store import BlobRef, BlobStore, BlobStoreUnavailable, Download

__all__ = [
    "Backend",
    "BlobRef",
    "BlobStore",
    "BlobStoreUnavailable",
    "Download",
    "DownloadSigner",
    "open_backend",
]
