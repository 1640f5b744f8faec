"""SQL targets: file-path rules and connectivity for database connections."""
