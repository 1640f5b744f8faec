"""The job queues: short proxy work never waits behind long queries, and the sweep and purge
never wait behind either. Each has its own slots in every worker (embedded or `keyhole worker`)."""

from __future__ import annotations

PROXY_QUEUE = "keyhole.proxy"
QUERIES_QUEUE = "keyhole.queries"
MAINTENANCE_QUEUE = "keyhole.maintenance"

JOB_QUEUES = (PROXY_QUEUE, QUERIES_QUEUE)  # queues of jobs; maintenance runs periodic tasks
ALL_QUEUES = (*JOB_QUEUES, MAINTENANCE_QUEUE)
SHORT_NAMES = {"proxy": PROXY_QUEUE, "queries": QUERIES_QUEUE, "maintenance": MAINTENANCE_QUEUE}


def parse_queues(text: str) -> tuple[str, ...]:
    """``proxy,queries,maintenance`` (any of them, any order) → the queues' full names."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SHORT_NAMES]
    if unknown or not names:
        raise ValueError(
            f"unknown queue {', '.join(unknown) or '(none given)'}; choose from {', '.join(SHORT_NAMES)}"
        )
    return tuple(queue for short, queue in SHORT_NAMES.items() if short in names)
