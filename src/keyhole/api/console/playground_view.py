"""What the playground shows: a connection's proxy contract (names only, never a credential's
value) and a call's answer (status, headers, the body as a folded JSON tree, text, or a download
link). Every text shown passes the connection's scrubber, so a connection that lets echoes of its
credential through to API callers still shows none on a page."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any, Literal

from keyhole.connections.target import HttpTarget
from keyhole.proxy import contract
from keyhole.proxy.binary import BinaryBody
from keyhole.proxy.response import is_json
from keyhole.proxy.service import ProxyInfo, ProxyResult

MAX_TREE_NODES = 2_000  # a JSON answer shows this many values folded; the rest stays in "Raw"
MAX_TREE_DEPTH = 40
OPEN_DEPTH = 2  # levels of the tree shown unfolded

BodyKind = Literal["none", "json", "text", "base64", "binary", "preview"]


@dataclass(frozen=True, slots=True)
class Contract:
    base_url: str
    proxy_enabled: bool
    methods: tuple[str, ...]
    injected_headers: list[str]
    injected_query: list[str]
    inherited_headers: list[str]
    inherited_query: list[str]
    blocked_headers: list[str]
    path_rule: str
    max_request_body_bytes: int
    timeout_ms: int
    connection_rate_limit: int | None
    organization_rate_limit: int | None
    scrubs_echoes: bool
    calls_24h: int
    ok_24h: int
    client_errors_24h: int
    server_errors_24h: int
    last_call_at: datetime | None


def contract_of(info: ProxyInfo) -> Contract:
    target, stats = info.target, info.stats
    limits = target.limits
    return Contract(
        base_url=str(target.base_url),
        proxy_enabled=target.proxy_enabled,
        methods=contract.ALLOWED_METHODS,
        injected_headers=list(target.credential_headers),
        injected_query=list(target.credential_query),
        inherited_headers=list(target.inherited_headers),
        inherited_query=[name for name, _ in target.inherited_query],
        blocked_headers=[*contract.BLOCKED_REQUEST_HEADERS, *contract.BLOCKED_REQUEST_HEADER_PATTERNS],
        path_rule=contract.PATH_RULE,
        max_request_body_bytes=limits.max_request_body_bytes,
        timeout_ms=limits.timeout_ms,
        connection_rate_limit=limits.rate_limit_per_minute,
        organization_rate_limit=info.organization_rate_limit_per_minute,
        scrubs_echoes=limits.scrub_echoed_secrets,
        calls_24h=stats.calls,
        ok_24h=stats.ok_2xx,
        client_errors_24h=stats.client_4xx,
        server_errors_24h=stats.server_5xx,
        last_call_at=stats.last_call_at,
    )


@dataclass(frozen=True, slots=True)
class JsonNode:
    """One value of a JSON answer: a container's ``text`` sums it up (``3 keys``), a leaf's is its
    JSON; ``more`` counts the children left out past ``MAX_TREE_NODES``."""

    key: str | None
    kind: str  # object | array | value
    text: str
    open: bool
    children: list[JsonNode] = field(default_factory=list)
    more: int = 0


@dataclass(frozen=True, slots=True)
class Answer:
    """An upstream's answer as the page shows it, every text scrubbed."""

    status: int
    reason: str
    latency_ms: int
    size_bytes: int
    truncated: bool  # the upstream sent more than the connection keeps
    spilled: bool  # longer than the page shows: ``text`` is its start, ``download`` the whole
    call_id: str
    content_type: str
    headers: list[tuple[str, str]]
    kind: BodyKind
    text: str
    tree: JsonNode | None
    download: BinaryBody | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def answer_of(result: ProxyResult, target: HttpTarget) -> Answer:
    scrub = target.scrubber.scrub_text
    kind: BodyKind
    tree: JsonNode | None = None
    text = scrub(result.body)
    if result.binary is not None and not result.spilled:
        kind, text = "binary", ""
    elif not result.body:
        kind = "none"
    elif result.body_encoding == "base64":
        kind = "base64"
    elif result.spilled:
        kind = "preview"
    else:
        tree = json_tree(text) if is_json(result.content_type) else None
        kind = "text" if tree is None else "json"
    return Answer(
        status=result.status,
        reason=reason(result.status),
        latency_ms=result.latency_ms,
        size_bytes=result.body_bytes,
        truncated=result.truncated,
        spilled=result.spilled,
        call_id=result.call_id,
        content_type=scrub(result.content_type),
        headers=[(scrub(name), scrub(value)) for name, value in result.headers.items()],
        kind=kind,
        text=text,
        tree=tree,
        download=result.binary,
    )


def json_tree(text: str) -> JsonNode | None:
    """The answer as a tree to fold, or None when it is not JSON (or nests past what a page can
    show). Numbers keep their exact text."""
    try:
        value = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    budget = [MAX_TREE_NODES]
    return _node(None, value, 0, budget)


def _node(key: str | None, value: Any, depth: int, budget: list[int]) -> JsonNode:
    budget[0] -= 1
    if isinstance(value, dict | list) and value and depth < MAX_TREE_DEPTH:
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        children = []
        for name, item in items:
            if budget[0] <= 0:
                break
            children.append(_node(str(name), item, depth + 1, budget))
        count = len(items)
        if isinstance(value, dict):
            kind, summary = "object", f"{{…}} {count} key{'s' if count != 1 else ''}"
        else:
            kind, summary = "array", f"[…] {count} item{'s' if count != 1 else ''}"
        return JsonNode(key, kind, summary, depth < OPEN_DEPTH, children, count - len(children))
    return JsonNode(key, "value", _leaf(value), False)


def _leaf(value: Any) -> str:
    """A value's JSON on one line (a container nested past ``MAX_TREE_DEPTH`` too)."""
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)
