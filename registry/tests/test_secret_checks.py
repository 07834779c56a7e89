"""The secret-provider checks pass a good provider and fail each kind of broken one, saying how to fix it."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field

from tiercel import Example, SecretProvider
from tiercel_registry.checks import CheckFailed, CheckSkipped, Options, run_check

FLOW = "id: f\nnamespace: n\ntasks:\n  - {id: t, type: core.Log, message: \"{{ secret('X') }}\"}\n"
STORE: dict[tuple[str, str], str] = {}


class Good(SecretProvider):
    """Secrets from a dict, scoped by namespace (for tests)."""

    type: ClassVar[str] = "probe.Good"
    examples: ClassVar[list[Example]] = [Example("read one", FLOW, run=False)]
    prefix: str = Field("", description="Prefix of every name.")

    def get(self, name: str, namespace: str) -> str | None:
        for ns in self.lineage(namespace):
            if (ns, self.prefix + name) in STORE:
                return STORE[(ns, self.prefix + name)]
        return None


class Flat(Good):
    """Forgets parent namespaces."""

    type: ClassVar[str] = "probe.Flat"

    def get(self, name: str, namespace: str) -> str | None:
        return STORE.get((namespace, name))


class Empty(Good):
    """Answers an empty string for a missing secret."""

    type: ClassVar[str] = "probe.Empty"

    def get(self, name: str, namespace: str) -> str | None:
        return super().get(name, namespace) or ""


class Stripped(Good):
    """Strips whitespace off values."""

    type: ClassVar[str] = "probe.Stripped"

    def get(self, name: str, namespace: str) -> str | None:
        value = super().get(name, namespace)
        return value.replace("\n", " ") if value else value


class Raising(Good):
    """Raises for a missing secret."""

    type: ClassVar[str] = "probe.Raising"

    def get(self, name: str, namespace: str) -> str | None:
        value = super().get(name, namespace)
        if value is None:
            raise KeyError(name)
        return value


OPTIONS = Options(seed=lambda home, namespace, name, value: STORE.__setitem__((namespace, name), value))


@pytest.mark.parametrize(
    "check", ["schema", "documented", "examples_validate", "unknown_property", "lookup", "inherited", "missing"]
)
def test_a_good_provider_passes(check):
    run_check(check, Good, OPTIONS)


@pytest.mark.parametrize(
    "cls, check, fragment",
    [
        (Flat, "inherited", "look in each parent namespace too"),
        (Empty, "missing", "gave '', expected None"),
        (Stripped, "lookup", "return the value exactly as stored"),
        (Raising, "missing", "raised KeyError"),
    ],
)
def test_a_broken_provider_fails_its_check(cls, check, fragment):
    with pytest.raises(CheckFailed, match=fragment):
        run_check(check, cls, OPTIONS)


def test_without_a_seed_fixture_the_checks_skip_naming_it():
    with pytest.raises(CheckSkipped, match="give the conformance class a `seed` fixture"):
        run_check("lookup", Good, Options())
