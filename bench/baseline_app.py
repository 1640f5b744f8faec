"""The bare passthrough baseline: the calibration's ``app_aiohttp.py`` (variant d), unchanged.

Starlette + one shared aiohttp ClientSession + orjson, served by uvicorn (uvloop, httptools,
no access log, 1 worker). Only two things differ from the spec's file: the upstream address comes from
``BENCH_UPSTREAM`` instead of a fixed port, and the lines are wrapped for the linter. Run by bench/proxy.py as
``uvicorn baseline_app:app --app-dir bench ...``.
"""

import os

import aiohttp
import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:18081")
AUTH = "Bearer sk-test-0123456789abcdef"
_s = None


def session():
    global _s
    if _s is None:
        _s = aiohttp.ClientSession(
            base_url=UPSTREAM,
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=30),
            auto_decompress=False,
        )
    return _s


async def proxy(request):
    req = orjson.loads(await request.body())
    headers = dict(req.get("headers") or {})
    headers["Authorization"] = AUTH
    body = req.get("body")
    data = None if body is None else (body.encode() if isinstance(body, str) else orjson.dumps(body))
    async with session().request(req.get("method", "GET"), req["path"], headers=headers, data=data) as r:
        raw = await r.read()
        out = {
            "status": r.status,
            "headers": {str(k): v for k, v in r.headers.items()},  # orjson rejects aiohttp's istr keys
            "body": raw.decode("utf-8", "replace"),
        }
    return Response(orjson.dumps(out), media_type="application/json")


app = Starlette(routes=[Route("/proxy", proxy, methods=["POST"])])
