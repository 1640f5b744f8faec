"""Prometheus metrics of the MCP tools."""

from __future__ import annotations

from prometheus_client import Counter

TOOL_CALLS = Counter(
    "keyhole_mcp_tool_calls_total",
    "MCP tool calls by tool and outcome (ok, or the error key)",
    ["tool", "outcome"],
)


def count_tool_call(tool: str, outcome: str) -> None:
    TOOL_CALLS.labels(tool, outcome).inc()
