"""Secrets from HashiCorp Vault or OpenBao KV v2 for Tiercel."""

__version__ = "0.1.0"
