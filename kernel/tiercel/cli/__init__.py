"""The `tiercel` command."""
