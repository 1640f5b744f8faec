"""Helpers for the client scripts: read the scenario from the environment, record each step.

Each script runs inside its client's own virtual environment (not the project's), so it uses the
standard library only besides the client under test. The last line printed is one JSON object.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
import urllib.request
from collections.abc import Callable
from typing import Any

URL = os.environ["KEYHOLE_URL"]
API_KEY = os.environ["KEYHOLE_API_KEY"]
HTTPBIN = os.environ["HTTPBIN_URL"]
USER_ID = os.environ["COMPOSIO_USER_ID"]
TOKEN = os.environ["UPSTREAM_TOKEN"]
PNG_HEADER = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
UPLOAD = bytes(range(256)) * 4  # not UTF-8: httpbin echoes it as a data: URL

results: dict[str, Any] = {}


def error_info(exc: BaseException) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    inner = body.get("error") if isinstance(body, dict) else None
    info: dict[str, Any] = {"error": type(exc).__name__, "status": getattr(exc, "status_code", None)}
    if isinstance(inner, dict):
        info.update(slug=inner.get("slug"), code=inner.get("code"), message=inner.get("message"))
    details = getattr(exc, "details", None)
    if details is not None and not callable(details):
        info["details_slug"] = details.get("slug") if isinstance(details, dict) else None
    request_id = getattr(exc, "request_id", None)
    if isinstance(request_id, str):
        info["request_id"] = request_id
    return info


def step(name: str, action: Callable[[], Any]) -> Any:
    """Run one step; record its JSON-able result, or the exception it raised."""
    try:
        value = action()
    except Exception as exc:
        results[name] = error_info(exc)
        if not hasattr(exc, "status_code"):
            results[name]["traceback"] = traceback.format_exc()[-2000:]
        return None
    results[name] = value
    return value


def download(binary: Any) -> dict[str, Any]:
    """Fetch a ``binary_data`` URL with no credential; its size and first bytes."""
    url = binary["url"] if isinstance(binary, dict) else binary.url
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
        return {
            "size": len(body),
            "head": base64.b64encode(body[:8]).decode(),
            "type": response.headers["Content-Type"],
        }


def finish() -> None:
    sys.stdout.write(json.dumps(results, default=str) + "\n")
