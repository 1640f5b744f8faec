"""The MCP server: Keyhole's tools for agents, over stdio, streamable HTTP and session URLs."""
