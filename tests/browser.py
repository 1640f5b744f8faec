"""A real browser for tests: Debian's Chromium, headless, driven by Playwright.

``KEYHOLE_CHROMIUM`` names another executable. Without one the browser tests skip on a laptop
and fail under ``CI=true``, like every other missing service. Screenshots go to
``<repo>/.artifacts/screenshots`` (or ``KEYHOLE_ARTIFACTS``), kept after the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from conftest import ARTIFACTS, IN_CI


def chromium_executable() -> str:
    found = os.environ.get("KEYHOLE_CHROMIUM") or shutil.which("chromium")
    if found is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)
    return found


@contextmanager
def launched() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class Answer:
    """One response the page received: its headers, and its body when the browser still holds it
    (a redirect has none; a file served from the memory cache may have none)."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes | None


@dataclass
class Watched:
    """A page with what it asked for, what it was answered and what went wrong in it recorded."""

    page: Page
    requests: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path


def watch(page: Page) -> Watched:
    watched = Watched(page)

    def on_request(request: Request) -> None:
        watched.requests.append(request.url)

    def on_response(response: Response) -> None:
        try:
            body: bytes | None = response.body()
        except PlaywrightError:  # a redirect, a download, a body the browser no longer holds
            body = None
        watched.answers.append(Answer(response.url, response.status, response.headers, body))

    def on_failure(request: Request) -> None:
        watched.failures.append(f"{request.method} {request.url}: {request.failure}")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", on_failure)
    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(str(error)))
    return watched
