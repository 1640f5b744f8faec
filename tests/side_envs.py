"""Virtual environments for programs that cannot share the test environment, built once and cached.

Each gets its own environment under ``<repo>/.venvs-clients/<name>`` (git-ignored): the official
Composio clients (two releases share a distribution name), httpbin (its metadata pins a greenlet
that the browser driver cannot use) and the OpenAPI client generator (a command-line tool with
dependencies of its own). A marker file lists what was installed; an environment whose
marker matches is reused as is, so the slow pip work happens on the first run only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# KEYHOLE_CLIENT_VENVS moves the cache out of the work tree (e.g. to share it between clones).
VENVS = Path(os.environ.get("KEYHOLE_CLIENT_VENVS") or ROOT / ".venvs-clients")
MARKER = "keyhole-client-env.json"


@dataclass(frozen=True)
class SideEnv:
    name: str
    steps: tuple[tuple[str, ...], ...]  # successive `pip install` argument lists

    @property
    def path(self) -> Path:
        return VENVS / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def marker(self) -> dict[str, object]:
        return {"steps": [list(step) for step in self.steps], "python": sys.version.split()[0]}


# Flask 2.3 dropped the pretty-printed JSON httpbin's echoes are compared with, and Werkzeug 2.3+
# refuses the bytearray httpbin answers /bytes with.
HTTPBIN = SideEnv("httpbin-0.10", (("httpbin==0.10.2", "flask<2.3", "werkzeug<2.3"),))


# The client generator the README shows, pinned so that a new release cannot change the test.
CLIENT_GENERATOR = SideEnv("openapi-python-client-0.29", (("openapi-python-client==0.29.1",),))


def _ready(env: SideEnv) -> bool:
    marker = env.path / MARKER
    if not marker.exists() or not env.python.exists():
        return False
    try:
        return bool(json.loads(marker.read_text()) == env.marker())
    except ValueError:
        return False


def ensure(env: SideEnv) -> Path:
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
