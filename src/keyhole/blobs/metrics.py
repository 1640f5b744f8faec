"""Prometheus metrics of the blob store (served at ``/metrics``; per process)."""

from __future__ import annotations

from prometheus_client import Counter

STALE_UPLOADS_ABORTED = Counter(
    "keyhole_blob_stale_uploads_aborted_total",
    "Incomplete uploads of dead writers aborted by the purge (S3 multipart uploads, local partial files).",
)
OPERATIONS = Counter(
    "keyhole_blob_operations_total",
    "Blob store operations by kind (write, read, delete) and outcome (ok, error, cancelled, missing).",
    ["operation", "outcome"],
)
WRITTEN_BYTES = Counter("keyhole_blob_written_bytes_total", "Bytes written to the blob store.")
