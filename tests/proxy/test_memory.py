"""A 1 GiB upstream body through the proxy: the server reads only up to the cap and its memory
barely moves."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from .support import GIB, Gateway, LocalUpstream

MIB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


def _reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS where the kernel supports it (clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_kib(pid, "VmHWM") - _status_kib(pid, "VmRSS") < 1024


def test_gibibyte_body_is_capped_in_constant_memory(
    server: Any, gw_a: Gateway, fresh_upstream: LocalUpstream
) -> None:
    assert server.process is not None
    pid = server.process.pid
    connection = gw_a.create(fresh_upstream.url())  # default cap: 1 MiB
    warm = gw_a.ok(connection, method="GET", path="/big", query={"size": 2 * MIB})  # warm the code path
    assert warm["truncated"] is True

    before = _status_kib(pid, "VmRSS")
    peak_known = _reset_peak(pid)
    data = gw_a.ok(connection, method="GET", path="/big", query={"size": GIB})
    after = _status_kib(pid, "VmRSS")

    assert data["status"] == 200
    assert data["truncated"] is True
    assert data["bodyEncoding"] == "utf-8"
    assert data["body"] == "x" * MIB
    sent = fresh_upstream.sent[f"/big?size={GIB}"]
    assert MIB <= sent < 64 * MIB, f"the upstream streamed {sent} bytes: the proxy kept reading"
    assert (after - before) * 1024 < 32 * MIB, f"RSS grew by {(after - before) // 1024} MiB"
    if peak_known:
        peak = _status_kib(pid, "VmHWM")
        assert (peak - before) * 1024 < 32 * MIB, f"peak RSS grew by {(peak - before) // 1024} MiB"
    [record] = gw_a.calls(connection, limit=1)["data"]
    assert (record["truncated"], record["bytesOut"]) == (True, MIB)
