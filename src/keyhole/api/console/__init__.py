"""The web console: server-rendered pages under ``/console`` over the same core services as the
dialects. Sign-in exchanges an API key for a server-side session (``tenancy.browser_sessions``);
every page can do exactly what that key may do. No business rule lives here."""
