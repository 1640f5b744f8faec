"""Connected accounts: the Composio view of connections, with their owners and auth configs."""
