"""Real `tiercel server` subprocesses (tiercel.testing.harness.TiercelServer) and a Prometheus text parser."""

from __future__ import annotations

import httpx
import pytest

from tiercel.testing.harness import TiercelServer


@pytest.fixture
def server(tmp_path):
    proc = TiercelServer(tmp_path / "home").start()
    yield proc
    proc.stop()


def _scrape(url: str, **kw) -> dict[tuple[str, frozenset], float]:
    """``/metrics`` parsed: {(sample name, frozenset of label items): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(url, timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples *name* whose labels include *labels* (0 when there is none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@pytest.fixture
def prom():
    """``prom.scrape(url)`` and ``prom.value(samples, name, **labels)``."""

    class Prom:
        scrape = staticmethod(_scrape)
        value = staticmethod(_value)

    return Prom
