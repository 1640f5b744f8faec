"""Amounts as the console's pages print them: how long ago, how long until, a running clock, a
byte count."""

from __future__ import annotations

from datetime import datetime, timedelta


def span(delta: timedelta) -> str:
    """A length of time in its two largest units: ``2 d 3 h``, ``5 min``, ``42 s``, ``0.3 s``."""
    if delta.total_seconds() < 10:
        return f"{max(delta.total_seconds(), 0):.1f} s"
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    units = [(seconds // 86_400, "d"), (seconds % 86_400 // 3_600, "h"), (seconds % 3_600 // 60, "min")]
    while units[0][0] == 0:
        units.pop(0)
    return " ".join(f"{amount} {unit}" for amount, unit in units[:2] if amount)


def ago(moment: datetime, now: datetime) -> str:
    if now - moment < timedelta(seconds=10):
        return "just now"
    return f"{span(now - moment)} ago"


def until(moment: datetime, now: datetime) -> str:
    if moment <= now:
        return "now"
    return f"in {span(moment - now)}"


def clock(delta: timedelta) -> str:
    """A stopwatch reading: ``0:07``, ``12:34``, ``1:02:03``."""
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3_600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def byte_size(count: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    amount, unit = float(count), "B"
    for larger in ("KiB", "MiB", "GiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, larger
    return f"{count} B" if unit == "B" else f"{amount:.1f} {unit}"
