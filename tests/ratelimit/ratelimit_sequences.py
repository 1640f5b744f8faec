"""Generated call sequences for the limiters, and the exact log they are checked against.

Times are multiples of 1/64 s from a base, so a float clock and Redis's microseconds both hold
them exactly and the two limiters see the same instants.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from hypothesis import strategies as st

TICK = 1 / 64
KEYS = ("org:o", "conn:o:a", "conn:o:b")


@dataclass(frozen=True)
class Step:
    ticks: int  # time since the previous step, in TICKs
    key: int  # index into KEYS
    hits: int  # calls at that instant
    lowered: bool  # with the key's limit lowered to a third (a limit changed by an update)

    def limit(self, limits: tuple[int, ...]) -> int:
        limit = limits[self.key]
        return max(1, limit // 3) if self.lowered else limit


steps = st.lists(
    st.builds(
        Step,
        ticks=st.one_of(st.integers(0, 96), st.integers(0, 64 * 75)),
        key=st.integers(0, len(KEYS) - 1),
        hits=st.integers(1, 30),
        lowered=st.booleans(),
    ),
    min_size=1,
    max_size=40,
)
limits = st.tuples(*(st.sampled_from([1, 2, 3, 5, 8, 30, 100]) for _ in KEYS))


@dataclass
class ExactLog:
    """Every allowed hit's time, per key: what an exact sliding log would count."""

    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, now: float) -> None:
        self.times.setdefault(key, []).append(now)

    def within(self, key: str, now: float, seconds: float) -> int:
        """Allowed hits of ``key`` in ``(now - seconds, now]``."""
        times = self.times.get(key, [])
        return len(times) - bisect.bisect_right(times, now - seconds)

    def exact_wait(self, key: str, now: float, limit: int) -> float:
        """How long an exact log would make the next hit wait (0: it would allow it now)."""
        times = self.times.get(key, [])
        counted = times[bisect.bisect_right(times, now - 60) :]
        if len(counted) < limit:
            return 0.0
        return counted[len(counted) - limit] + 60 - now
