"""The tools' arguments (pydantic models: each tool's ``inputSchema``) and results (``TypedDict``:
each tool's ``outputSchema``). Names are snake_case and stable: agents and their hosts keep them."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from keyhole.proxy import contract

INLINE_DEFAULT_BYTES = 32_768
INLINE_MIN_BYTES = 1_024
INLINE_MAX_BYTES = 65_536
WAIT_DEFAULT_MS = 10_000
WAIT_MAX_MS = 60_000
PAGE_DEFAULT_ROWS = 100
PAGE_MAX_ROWS = 1_000
LIST_DEFAULT = 100
LIST_MAX = 200

ConnectionRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    Field(
        description="A connection's id (or its name, when unique) from keyhole_list_connections; in a "
        "tool router session, the toolkit slug"
    ),
]
Path = Annotated[
    str,
    StringConstraints(min_length=1, max_length=8192),
    Field(description=f"The path under the connection's base URL: {contract.PATH_RULE}"),
]
QueryValue = str | int | float | bool | list[str | int | float | bool]
Headers = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=256)],
        Annotated[str, StringConstraints(max_length=contract.MAX_HEADER_VALUE_LENGTH)],
    ],
    Field(
        max_length=contract.MAX_HEADERS,
        description="Extra request headers. The connection's credential headers are set by Keyhole and "
        "cannot be sent (keyhole_describe_connection names them)",
    ),
]
InlineBytes = Annotated[
    int,
    Field(
        ge=INLINE_MIN_BYTES,
        le=INLINE_MAX_BYTES,
        description="Return the body inline up to this many bytes; a longer body comes back as a preview "
        "and a download URL for the whole",
    ),
]
WaitMs = Annotated[
    int, Field(ge=0, le=WAIT_MAX_MS, description="How long to wait for the query to finish, in milliseconds")
]
PageRows = Annotated[int, Field(ge=1, le=PAGE_MAX_ROWS, description="Rows per page")]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ListConnections(_Arguments):
    kind: Literal["http", "sql"] | None = Field(default=None, description="Only HTTP APIs or only databases")
    search: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None, description="Part of the name or type, any case"
    )
    limit: int = Field(default=LIST_DEFAULT, ge=1, le=LIST_MAX, description="At most this many")
    offset: int = Field(
        default=0, ge=0, le=1_000_000, description="Skip this many (next_offset of the last page)"
    )


class DescribeConnection(_Arguments):
    connection: ConnectionRef


class ListConnectionTypes(_Arguments):
    kind: Literal["http", "sql"] | None = Field(default=None, description="Only HTTP APIs or only databases")
    search: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None, description="Part of the id or name, any case"
    )
    limit: int = Field(default=LIST_DEFAULT, ge=1, le=LIST_MAX, description="At most this many")
    offset: int = Field(
        default=0, ge=0, le=1_000_000, description="Skip this many (next_offset of the last page)"
    )


class HttpGet(_Arguments):
    connection: ConnectionRef
    path: Path
    method: Literal["GET", "HEAD"] = "GET"
    query: dict[str, QueryValue] | None = Field(
        default=None, description="Query parameters; an array repeats the name"
    )
    headers: Headers | None = None
    max_inline_bytes: InlineBytes = INLINE_DEFAULT_BYTES


class HttpRequest(HttpGet):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"  # type: ignore[assignment]
    body: dict[str, Any] | list[Any] | None = Field(
        default=None, description="A JSON body (object or array), sent as application/json"
    )
    body_text: Annotated[str, StringConstraints(max_length=contract.MAX_ENVELOPE_BYTES)] | None = Field(
        default=None, description="A text body, sent as is (with content_type); exclusive with body"
    )
    content_type: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x08\x0a-\x1f\x7f]+$")
        ]
        | None
    ) = Field(default=None, description="The text body's content type (default text/plain; charset=utf-8)")


class SqlQuery(_Arguments):
    connection: ConnectionRef
    sql: Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)] = Field(
        description="One SQL statement"
    )
    page_size: PageRows = PAGE_DEFAULT_ROWS
    wait_ms: WaitMs = WAIT_DEFAULT_MS


class SqlResults(_Arguments):
    query_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The query_id of keyhole_sql_query or keyhole_sql_execute"
    )
    page_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = Field(
        default=None, description="next_page_token of the previous page; leave out for the first page"
    )
    page_size: PageRows = PAGE_DEFAULT_ROWS
    wait_ms: WaitMs = WAIT_DEFAULT_MS


# -- results -------------------------------------------------------------------------------------


class Health(TypedDict):
    status: str  # healthy | unhealthy | unknown | unreadable …, as the connection's status
    error: str | None


class ConnectionSummary(TypedDict):
    id: str  # what the other tools take as `connection`
    name: str
    type: str
    kind: Literal["http", "sql"]
    base_url: str | None
    health: Health
    account_id: str | None  # in a tool router session: the connected account the toolkit uses
    summary: str  # one line: what the connection is and how it may be called


class ConnectionList(TypedDict):
    connections: list[ConnectionSummary]
    total: int
    next_offset: int | None


class RateLimits(TypedDict):
    connection_per_minute: int | None  # null: no limit
    organization_per_minute: int | None


class HttpContract(TypedDict):
    base_url: str
    allowed_methods: list[str]
    read_only_methods: list[str]
    locked_headers: list[str]  # set by Keyhole from the credential; a call may not send them
    locked_query: list[str]
    inherited_headers: dict[str, str]  # sent on every call unless the call sets them
    inherited_query: dict[str, str]
    blocked_request_headers: list[str]
    path_rule: str
    max_request_body_bytes: int
    max_body_bytes: int  # the whole body behind a download URL is cut at this size
    inline_max_bytes: int  # the most max_inline_bytes may ask for
    timeout_ms: int
    rate_limits: RateLimits
    scrub_echoed_secrets: bool


class SqlContract(TypedDict):
    dialect: str
    read_only: bool  # the connection runs every query read-only
    statement_timeout_ms: int
    max_rows: int
    max_bytes: int
    page_max_rows: int


class ConnectionContract(TypedDict):
    connection: ConnectionSummary
    http: HttpContract | None
    sql: SqlContract | None


class ConnectionTypeSummary(TypedDict):
    id: str
    name: str
    kind: Literal["http", "sql"]


class ConnectionTypeList(TypedDict):
    types: list[ConnectionTypeSummary]
    total: int
    next_offset: int | None


class Download(TypedDict):
    url: str  # fetches the whole body with no other credential, until expires_at
    expires_at: str
    size_bytes: int
    content_type: str
    complete: bool  # false: the body was longer than max_body_bytes and was cut there


# base64: bytes that are not UTF-8 under a text content type, inline as base64 in body
BodyKind = Literal["json", "text", "binary", "base64", "none"]


class HttpResult(TypedDict):
    status: int  # the upstream's
    ok: bool  # 2xx
    headers: dict[str, str]
    content_type: str
    body_kind: BodyKind
    body: Any  # JSON as parsed (integers beyond ±2^53-1 and long decimals as strings), or text
    body_preview: str | None  # the first max_inline_bytes when the body was too long to inline
    truncated: bool  # body is not the whole answer: see download
    size_bytes: int
    download: Download | None
    call_id: str
    latency_ms: int


class SqlError(TypedDict):
    code: str
    message: str


class SqlProgress(TypedDict):
    rows: int  # rows stored so far while running; all of them once done
    bytes: int  # bytes of the rows' JSON stored so far while running; all of them once done
    elapsed_seconds: float  # since the query started, until it finished once done


class SqlResult(TypedDict):
    query_id: str
    status: Literal["created", "running", "done", "failed"]
    fields: list[str] | None
    rows: list[list[Any]]  # this page, each row in the order of fields
    row_count: int | None  # rows in the whole result, once done
    truncated: bool  # a row or byte limit of the connection cut the result
    next_page_token: str | None
    expires_at: str
    error: SqlError | None
    progress: NotRequired[SqlProgress]  # while running and once done
