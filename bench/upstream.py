"""The benchmark's upstream: a raw asyncio HTTP/1.1 server that answers from prebuilt bytes.

``python bench/upstream.py PORT`` serves on 127.0.0.1:PORT until SIGTERM or SIGINT.

It stands in for the calibration's nginx upstream (nginx is not installed here):
- Every request gets ``200`` with the same **1024-byte JSON** body, keep-alive.
- ``X-Auth-Seen: yes|no`` says whether the request carried the bench credential
  (``Authorization: Bearer sk-test-0123456789abcdef``). It plays the part of the
  calibration's ``add_header X-Auth-Seen $http_authorization``, so the bench can see that
  each proxy injected the credential. The secret itself is never echoed, because the
  answer must stay one of two prebuilt byte strings.
- ``GET /__stats`` answers the number of requests served so far. It does not count
  itself. The bench uses it to check that every request a proxy answered really
  reached the upstream.

Speed: there is no parser object and no per-request allocation beyond slicing the buffer.
It is a bytes search for the end of the header block, a ``Content-Length`` check, and one
``transport.write`` of a prebuilt response. Under uvloop this serves well above the rate
any Python proxy reaches (see the ``direct`` rows of the bench), so it is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import cast

CREDENTIAL = b"sk-test-0123456789abcdef"
AUTH_LINE = b"\r\nauthorization: bearer " + CREDENTIAL


def make_body() -> bytes:
    items = ",".join(f'{{"id":"item_{i:02d}","object":"item","n":{i}}}' for i in range(16))
    head = '{"object":"list","data":[' + items + '],"pad":"'
    tail = '"}'
    pad = 1024 - len(head) - len(tail)
    assert pad > 0
    body = (head + "x" * pad + tail).encode()
    assert len(body) == 1024
    return body


BODY = make_body()


def _response(auth_seen: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
        b"Connection: keep-alive\r\n"
        b"X-Auth-Seen: " + auth_seen + b"\r\n"
        b"\r\n" + BODY
    )


RESPONSE_AUTH = _response(b"yes")
RESPONSE_NOAUTH = _response(b"no")
served = 0


class Upstream(asyncio.Protocol):
    __slots__ = ("buffer", "transport")
    transport: asyncio.Transport
    buffer: bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a registered subclass
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        global served
        buffer = self.buffer + data if self.buffer else data
        out = []
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else len(head)].strip() or 0)
            total = end + 4 + length
            if len(buffer) < total:
                break
            buffer = buffer[total:]
            if head.startswith(b"get /__stats "):
                text = str(served).encode()
                out.append(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                    + str(len(text)).encode()
                    + b"\r\n\r\n"
                    + text
                )
                continue
            served += 1
            out.append(RESPONSE_AUTH if AUTH_LINE in head else RESPONSE_NOAUTH)
        self.buffer = buffer
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def connection_lost(self, exc: Exception | None) -> None:
        self.buffer = b""


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=4096, reuse_address=True)
    try:
        await stop.wait()
    finally:
        server.close()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # plain asyncio still works, only slower
        asyncio.run(main(int(sys.argv[1])))
    else:
        uvloop.run(main(int(sys.argv[1])))
