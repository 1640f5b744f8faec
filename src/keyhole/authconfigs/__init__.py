"""Auth configs: per-organization, per-toolkit settings (auth scheme, encrypted custom credentials)."""
