"""Virtual environments for the official Composio clients, built once and cached.

Each client gets its own environment under ``<repo>/.venvs-clients/<name>`` (git-ignored): the
1.x and 2.0 clients share a distribution name and cannot live side by side. A marker file lists
what was installed; an environment whose marker matches is reused as is, so the slow pip work
happens on the first run only. Run this module directly to build them all ahead of the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# KEYHOLE_CLIENT_VENVS moves the cache out of the work tree (e.g. to share it between clones).
VENVS = Path(os.environ.get("KEYHOLE_CLIENT_VENVS") or ROOT / ".venvs-clients")
MARKER = "keyhole-client-env.json"


@dataclass(frozen=True)
class ClientEnv:
    name: str
    steps: tuple[tuple[str, ...], ...]  # successive `pip install` argument lists
    prefix: str  # the path prefix this client sends

    @property
    def path(self) -> Path:
        return VENVS / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def marker(self) -> dict[str, object]:
        return {"steps": [list(step) for step in self.steps], "python": sys.version.split()[0]}


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


def _ready(env: ClientEnv) -> bool:
    marker = env.path / MARKER
    if not marker.exists() or not env.python.exists():
        return False
    try:
        return bool(json.loads(marker.read_text()) == env.marker())
    except ValueError:
        return False


def ensure(env: ClientEnv) -> Path:
    """The environment's interpreter, building the environment first when its marker is stale."""
    if _ready(env):
        return env.python
    shutil.rmtree(env.path, ignore_errors=True)
    VENVS.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(env.path)], check=True, timeout=300)
    pip = [str(env.python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for step in env.steps:
        subprocess.run([*pip, *step], check=True, timeout=900, env={**os.environ, "PIP_NO_INPUT": "1"})
    (env.path / MARKER).write_text(json.dumps(env.marker()))
    return env.python


if __name__ == "__main__":
    for client in CLIENTS.values():
        print(client.name, ensure(client), flush=True)
