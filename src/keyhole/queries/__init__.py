"""Query runner: asynchronous SQL with streamed, paginated, expiring, owner-only results."""

from keyhole.queries.exports import Export, StoredResult, cell_text
from keyhole.queries.pages import page_rows
from keyhole.queries.service import QueryPage, QueryService, QuerySettings, QueryView
from keyhole.queries.tasks import QUERY_JOB

__all__ = [
    "QUERY_JOB",
    "Export",
    "QueryPage",
    "QueryService",
    "QuerySettings",
    "QueryView",
    "StoredResult",
    "cell_text",
    "page_rows",
]
