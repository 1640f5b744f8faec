"""The activity chart: calls per connection and hour over the last day, drawn as one small SVG of
stacked bars per connection (answered, answered 4xx/5xx, refused or failed in Keyhole) on a
shared scale, with the same numbers in a table for whoever does not see the bars."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from keyhole.audit.hours import DAY_HOURS, HOUR, HourCount, LastDay

WIDTH = 960  # wide and low: the chart spans the page at about a tenth of its width in height
HEIGHT = 80
PLOT_TOP = 4
PLOT_BOTTOM = 62  # the bars' baseline; the hour labels sit below it
LABEL_Y = 76
SLOT = WIDTH / DAY_HOURS
BAR = SLOT - 8
MAX_ROWS = 8  # the busiest connections get a chart each; the rest are counted beside them


@dataclass(frozen=True, slots=True)
class Geometry:
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = PLOT_BOTTOM + 0.5  # a one-unit line drawn on the pixel
    label_y: int = LABEL_Y


GEOMETRY = Geometry()


@dataclass(frozen=True, slots=True)
class Segment:
    y: float
    height: float
    fill: str


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    hour: datetime
    count: HourCount
    segments: list[Segment]

    @property
    def errors(self) -> int:
        return self.count.upstream_errors + self.count.failed


@dataclass(frozen=True, slots=True)
class Row:
    connection_id: str
    name: str
    calls: int
    errors: int
    bars: list[Bar]  # only the hours that had calls


@dataclass(frozen=True, slots=True)
class Chart:
    first_hour: datetime
    rows: list[Row]
    peak: int  # the most calls in one hour: the full height of every row's bars
    other_connections: int
    other_calls: int
    labels: list[tuple[float, str]]  # x and text of the hour marks under the bars


OK_FILL = "#1a7f37"
UPSTREAM_ERROR_FILL = "#cf222e"
FAILED_FILL = "#9a6700"


def chart(last_day: LastDay, names: Mapping[str, str], shown: Callable[[str], bool]) -> Chart:
    """The chart of the connections ``shown`` admits, busiest first; ``names`` labels them (a
    connection no longer there is labelled by its id)."""
    by_connection: dict[str, list[HourCount]] = {}
    calls: dict[str, int] = {}
    hidden: set[str] = set()
    for count in last_day.counts:  # a busy day holds a count per connection and hour: one pass
        connection_id = count.connection_id
        counts = by_connection.get(connection_id)
        if counts is None:
            if connection_id in hidden or not shown(connection_id):
                hidden.add(connection_id)
                continue
            counts = by_connection[connection_id] = []
            calls[connection_id] = 0
        counts.append(count)
        calls[connection_id] += count.calls
    totals = sorted(
        ((total, connection_id) for connection_id, total in calls.items()),
        key=lambda total: (-total[0], names.get(total[1], total[1])),
    )
    kept = totals[:MAX_ROWS]
    peak = max((c.calls for _, connection_id in kept for c in by_connection[connection_id]), default=0)
    rows = [
        _row(connection_id, names, by_connection[connection_id], last_day.first_hour, peak)
        for _, connection_id in kept
    ]
    rest = totals[MAX_ROWS:]
    return Chart(
        first_hour=last_day.first_hour,
        rows=rows,
        peak=peak,
        other_connections=len(rest),
        other_calls=sum(total for total, _ in rest),
        labels=_labels(last_day.first_hour),
    )


def _row(
    connection_id: str, names: Mapping[str, str], counts: Collection[HourCount], first: datetime, peak: int
) -> Row:
    bars = [_bar(count, first, peak) for count in sorted(counts, key=lambda c: c.hour)]
    return Row(
        connection_id=connection_id,
        name=names.get(connection_id, f"deleted connection {connection_id}"),
        calls=sum(count.calls for count in counts),
        errors=sum(bar.errors for bar in bars),
        bars=bars,
    )


def _bar(count: HourCount, first: datetime, peak: int) -> Bar:
    index = int((count.hour - first) / HOUR)
    scale = (PLOT_BOTTOM - PLOT_TOP) / peak
    segments = []
    bottom = float(PLOT_BOTTOM)
    answered = count.calls - count.upstream_errors - count.failed
    for amount, fill in (
        (answered, OK_FILL),
        (count.upstream_errors, UPSTREAM_ERROR_FILL),
        (count.failed, FAILED_FILL),
    ):
        if amount <= 0:
            continue
        height = max(amount * scale, 1.0)  # one call in a busy hour still shows
        bottom -= height
        segments.append(Segment(round(bottom, 2), round(height, 2), fill))
    return Bar(round(index * SLOT + (SLOT - BAR) / 2, 2), BAR, count.hour, count, segments)


def _labels(first: datetime) -> list[tuple[float, str]]:
    """A mark every six hours, as UTC clock times."""
    return [
        (round(index * SLOT, 2), f"{(first + timedelta(hours=index)):%H:%M}")
        for index in range(0, DAY_HOURS, 6)
    ]
