"""Virtual environments for the official Composio clients, built once and cached (``side_envs``).

The 1.x and 2.0 clients share a distribution name and cannot live side by side. Run this module
directly to build them all ahead of the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from side_envs import SideEnv, ensure


@dataclass(frozen=True)
class ClientEnv(SideEnv):
    prefix: str  # the path prefix this client sends


CLIENTS: dict[str, ClientEnv] = {
    env.name: env
    for env in (
        ClientEnv("composio-client-1.35", (("composio-client==1.35.0",),), "/api/v3"),
        ClientEnv("composio-client-1.43", (("composio-client==1.43.0",),), "/api/v3.1"),
        # Spec 0.1: composio 0.30.0 needs a certifi the index lacks; its pinned dependency set is
        # 0.29.0's (composio-client==2.0.0rc19), so install that first and 0.30.0 without deps.
        ClientEnv(
            "composio-sdk-0.30",
            (("composio==0.29.0",), ("--no-deps", "composio==0.30.0")),
            "/api/v3.1",
        ),
    )
}


if __name__ == "__main__":
    for client in CLIENTS.values():
        print(client.name, ensure(client), flush=True)
