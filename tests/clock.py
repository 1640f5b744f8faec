"""A clock the tests move by hand, for the ``clock`` parameter of time-dependent code."""

from __future__ import annotations

import time


class FakeClock:
    """Seconds, like ``time.time`` or ``time.monotonic``; it starts at the real time by default
    so that timestamps it makes, and compares with what other processes wrote, look like today's."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
