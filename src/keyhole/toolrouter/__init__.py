"""Tool-router sessions: a user's toolkit filter and pinned accounts, used to pick an account per call."""
