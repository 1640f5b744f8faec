"""The Composio dialect: ``/api/v3`` and ``/api/v3.1`` routes translated onto the core services."""
