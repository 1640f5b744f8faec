"""Query runner: asynchronous SQL with streamed, paginated, expiring, owner-only results."""

from keyhole.queries.service import QueryPage, QueryService, QuerySettings, QueryView
from keyhole.queries.tasks import QUERY_JOB

__all__ = ["QUERY_JOB", "QueryPage", "QueryService", "QuerySettings", "QueryView"]
