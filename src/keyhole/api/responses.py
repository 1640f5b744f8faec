"""JSON responses rendered with orjson, shared by every dialect."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def render_json(content: Any) -> bytes:
    # Header maps keep the HTTP client's case-insensitive str subclass as keys.
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return render_json(content)
