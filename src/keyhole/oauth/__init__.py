"""OAuth2 connections: the connect flow (authorization code + PKCE), client credentials, and
token refresh that never races (in-process single flight + a cross-process lock)."""
