"""Conformance test modules the registry ships for distributions that do not carry their own (the kernel's core plugin)."""
