"""Audit log of proxied calls: buffered writes, per-connection statistics and listing."""
