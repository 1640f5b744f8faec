"""Trap listeners on loopback that record everything a client sends them.

A trap stands where a colleague would like a stored secret to go: an HTTP server, a PostgreSQL
server that asks for the password in clear text, a MySQL server that switches to the clear-text
password plugin. Each records every connection and every byte, so a test can assert that a stored
secret never reached it, and (as a control) that a secret sent on purpose does.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["http", "postgresql", "mysql"]
_READ_TIMEOUT_SECONDS = 5.0


@dataclass
class Trap:
    protocol: Protocol
    # The HTTP answer's (content type, body) for the n-th connection (1-based); "trap" by default.
    answer: Callable[[int], tuple[str, bytes]] | None = None
    port: int = 0
    connections: int = 0
    received: list[bytes] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seen(self) -> bytes:
        with self._lock:
            return b"".join(self.received)

    def reset(self) -> None:
        with self._lock:
            self.connections = 0
            self.received.clear()

    def start(self) -> Trap:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, name=f"trap-{self.protocol}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> Trap:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _record(self, data: bytes) -> None:
        with self._lock:
            self.received.append(data)

    def _read(self, conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            self._record(chunk)
            data += chunk
        return data

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(_READ_TIMEOUT_SECONDS)
        try:
            with conn:
                if self.protocol == "http":
                    self._http(conn, number)
                elif self.protocol == "postgresql":
                    self._postgresql(conn)
                else:
                    self._mysql(conn)
        except OSError:
            pass

    def _http(self, conn: socket.socket, number: int) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                return
            self._record(chunk)
            head += chunk
        headers, _, rest = head.partition(b"\r\n\r\n")
        for line in headers.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                missing = int(value.strip()) - len(rest)
                if missing > 0:
                    self._read(conn, missing)
        content_type, body = self.answer(number) if self.answer is not None else ("text/plain", b"trap")
        status = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        conn.sendall(status.encode() + b"Connection: close\r\n\r\n" + body)

    def _postgresql(self, conn: socket.socket) -> None:
        length, code = struct.unpack("!ii", self._read(conn, 8))
        if code in (80877103, 80877104):  # SSLRequest / GSSENCRequest: plain text only here
            conn.sendall(b"N")
            length, code = struct.unpack("!ii", self._read(conn, 8))
        self._read(conn, length - 8)  # the startup parameters (user, database)
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = self._read(conn, 1)
        if kind == b"p":
            (size,) = struct.unpack("!i", self._read(conn, 4))
            self._read(conn, size - 4)
        fields = b"SFATAL\x00C28P01\x00Mpassword authentication failed\x00\x00"
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def _mysql(self, conn: socket.socket) -> None:
        salt = b"abcdefghijklmnopqrst"
        capabilities = 0x0001 | 0x0008 | 0x0200 | 0x8000 | 0x00080000  # long pw, db, 4.1, secure, plugin
        handshake = (
            b"\x0a5.7.0-trap\x00"
            + struct.pack("<I", 1)
            + salt[:8]
            + b"\x00"
            + struct.pack("<H", capabilities & 0xFFFF)
            + b"\x21"
            + struct.pack("<H", 2)
            + struct.pack("<H", capabilities >> 16)
            + bytes([21])
            + b"\x00" * 10
            + salt[8:]
            + b"\x00"
            + b"mysql_native_password\x00"
        )
        self._packet(conn, 0, handshake)
        self._read_packet(conn)  # the handshake response (user, scrambled password, database)
        self._packet(conn, 2, b"\xfe" + b"mysql_clear_password\x00" + salt + b"\x00")  # AuthSwitchRequest
        self._read_packet(conn)  # a client that follows the switch sends the password in clear
        message = b"Access denied"
        self._packet(conn, 4, b"\xff" + struct.pack("<H", 1045) + b"#28000" + message)

    @staticmethod
    def _packet(conn: socket.socket, sequence: int, payload: bytes) -> None:
        conn.sendall(struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload)

    def _read_packet(self, conn: socket.socket) -> bytes:
        header = self._read(conn, 4)
        size = int.from_bytes(header[:3], "little")
        return self._read(conn, size)
