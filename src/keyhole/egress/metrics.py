"""Prometheus metrics of the egress slots (served at ``/metrics``; per process).

Labelled by scope (``global``, ``origin``, ``organization``), never by an origin or an
organization: those are unbounded, and a label per value would grow without end."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

IN_FLIGHT = Gauge("keyhole_egress_in_flight", "Upstream exchanges holding a slot.")
WAITING = Gauge("keyhole_egress_waiting", "Upstream exchanges waiting for a slot.")
WAITS = Counter(
    "keyhole_egress_waits_total",
    "Exchanges that had to wait for a slot, by the scope at its limit.",
    ["scope"],
)
WAIT_TIMEOUTS = Counter(
    "keyhole_egress_wait_timeouts_total",
    "Exchanges whose deadline passed while waiting for a slot, by the scope at its limit.",
    ["scope"],
)
REFUSALS = Counter(
    "keyhole_egress_refusals_total",
    "Exchanges refused at once because too many already waited, by scope.",
    ["scope"],
)
