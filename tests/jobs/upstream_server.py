"""A small upstream for the async-proxy tests, run as its own process (so that streaming
hundreds of megabytes does not compete with the test process for the GIL).

Routes (any method):
  /bytes?size=N           application/octet-stream, N bytes of ``pattern_chunk`` blocks
  /text?size=N            text/plain, N bytes of ``x``
  /echo?repeat=N&type=T   the Authorization header repeated N times (content type T, default
                          text/plain), each copy after a growing run of ``.`` so that copies
                          straddle read boundaries
  /slow?seconds=S&size=N  headers at once, then N bytes trickled over S seconds
  /delay?seconds=S        answers ``ok`` after S seconds
  /status/C               answers status C
  /count/...              answers a JSON echo; counted like every other route
  /_hits?prefix=P         how many requests started with path P (not counted)
"""

from __future__ import annotations

import argparse
import asyncio
import collections

from aiohttp import web

CHUNK = 64 * 1024
hits: collections.Counter[str] = collections.Counter()


def pattern_chunk(index: int, size: int = CHUNK) -> bytes:
    """Chunk ``index`` of the /bytes body: its index, then a fixed non-text byte pattern."""
    head = index.to_bytes(8, "big")
    body = bytes((index * 7 + offset * 31) & 0xFF for offset in range(256)) * (CHUNK // 256)
    return (head + body)[:size]


async def _stream(request: web.Request, size: int, content_type: str, piece: object) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.content_length = size
    await response.prepare(request)
    sent = index = 0
    while sent < size:
        block = piece(index, min(CHUNK, size - sent))  # type: ignore[operator]
        await response.write(block)
        sent += len(block)
        index += 1
    await response.write_eof()
    return response


async def handle(request: web.Request) -> web.StreamResponse:
    path = request.path
    if path == "/_hits":
        prefix = request.query.get("prefix", "")
        return web.json_response({"hits": sum(n for key, n in hits.items() if key.startswith(prefix))})
    hits[request.path_qs] += 1
    query = request.query
    if path == "/bytes":
        return await _stream(request, int(query["size"]), "application/octet-stream", pattern_chunk)
    if path == "/text":
        return await _stream(request, int(query["size"]), "text/plain", lambda _, n: b"x" * n)
    if path == "/echo":
        secret = request.headers.get("Authorization", "").encode()
        parts = [b"." * (i % 97) + secret + b"\n" for i in range(int(query.get("repeat", "1")))]
        return web.Response(body=b"".join(parts), content_type=query.get("type", "text/plain"))
    if path == "/slow":
        seconds, size = float(query.get("seconds", "5")), int(query.get("size", "1000"))
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = size
        await response.prepare(request)
        steps = 20
        for step in range(steps):
            await asyncio.sleep(seconds / steps)
            await response.write(b"s" * (size // steps + (size % steps if step == steps - 1 else 0)))
        await response.write_eof()
        return response
    if path == "/delay":
        await asyncio.sleep(float(query.get("seconds", "2")))
        return web.Response(text="ok")
    if path.startswith("/status/"):
        return web.Response(status=int(path.rsplit("/", 1)[1]), text="status")
    return web.json_response({"path": request.path_qs, "method": request.method})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=parser.parse_args().port, access_log=None, print=None)


if __name__ == "__main__":
    main()
