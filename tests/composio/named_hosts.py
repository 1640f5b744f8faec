"""Run the ``keyhole`` command with a resolver of the test's own: every host name resolves to the one
address in ``KEYHOLE_TEST_RESOLVE_ALL`` (a loopback address), and nothing is looked up in DNS.

So an end-to-end test can name upstreams ``victim.herokuapp.com`` or ``api.example.com`` and still
never send a packet off the machine. The egress policy still checks the address it is given.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from ipaddress import ip_address

from keyhole.cli import app
from keyhole.egress import resolver

ADDRESS = ip_address(os.environ["KEYHOLE_TEST_RESOLVE_ALL"])


async def _every_name_is_loopback(
    self: resolver.CheckingResolver, host: str, port: int, family: int
) -> Sequence[tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]]]:
    if ADDRESS.version == 6:
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (str(ADDRESS), port, 0, 0))]
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (str(ADDRESS), port))]


resolver.CheckingResolver._getaddrinfo = _every_name_is_loopback  # type: ignore[method-assign]

if __name__ == "__main__":
    app()
