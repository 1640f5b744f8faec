"""Prometheus metrics of jobs, by queue (served at ``/metrics``; per process, except the
``keyhole_jobs`` gauge, which counts the whole store's waiting and running jobs)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Gauge("keyhole_jobs", "Jobs in the store by queue and status (created, running).", ["queue", "status"])
ATTEMPTS_RUNNING = Gauge("keyhole_job_attempts_running", "Attempts running in this process.", ["queue"])
ATTEMPTS = Counter(
    "keyhole_job_attempts_total",
    "Finished attempts by queue, outcome and error key.",
    ["queue", "outcome", "reason"],
)
ATTEMPT_SECONDS = Histogram(
    "keyhole_job_attempt_seconds",
    "Duration of job attempts.",
    ["queue"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
SWEPT = Counter(
    "keyhole_jobs_swept_total",
    "Attempts whose worker stopped responding, by what the sweep did (retried, failed).",
    ["queue", "action"],
)
