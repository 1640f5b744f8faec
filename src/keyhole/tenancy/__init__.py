"""Organizations, users, API keys and the principals they authenticate as."""
