"""Prometheus metrics of the proxy (served at ``/metrics``; per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROXY_CALLS = Counter(
    "keyhole_proxy_calls_total", "Proxied calls by dialect and outcome.", ["dialect", "outcome"]
)
PROXY_LATENCY = Histogram(
    "keyhole_proxy_latency_seconds",
    "End-to-end latency of proxied calls that reached the upstream.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROXY_RESPONSE_BYTES = Counter("keyhole_proxy_response_bytes_total", "Upstream body bytes read.")


def count_call(dialect: str, outcome: str) -> None:
    # The labelled child is looked up in a dict of our own: prometheus_client's ``labels``
    # validates and copies its arguments on every call.
    child = _CALL_COUNTERS.get((dialect, outcome))
    if child is None:
        child = _CALL_COUNTERS[(dialect, outcome)] = PROXY_CALLS.labels(dialect, outcome)
    child.inc()


_CALL_COUNTERS: dict[tuple[str, str], Counter] = {}
