"""Kubernetes task runner for Tiercel."""

__version__ = "0.1.0"
