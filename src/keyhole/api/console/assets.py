"""``/console/static/{digest}/{name}``: the console's own CSS and scripts, kept by browsers for a
year (the digest in the address changes with the content)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.console.security import secured
from keyhole.api.console.templating import static_files


async def static(request: Request) -> Response:
    found = static_files().get(request.path_params["name"])
    if found is None or found.digest != request.path_params["digest"]:
        return secured(Response("not found", status_code=404, media_type="text/plain"))
    response = Response(found.body, media_type=found.media_type)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return secured(response, cacheable=True)
