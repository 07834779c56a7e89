"""Browser tests run last: pytest-playwright keeps an event loop running in the main thread until the
session ends, and every later test that calls asyncio.run() would then fail."""

from __future__ import annotations


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: "/tests/ui/" in str(item.path))
