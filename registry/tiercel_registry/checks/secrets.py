"""Secret provider checks: a seeded secret reads back exactly, sub-namespaces inherit it, unknown is None."""

from __future__ import annotations

import inspect
import secrets
import tempfile
from pathlib import Path
from typing import Any

from tiercel_registry.checks import CheckSkipped, Options, fail

NAMESPACE = "conformance"
VALUE = "p@ss wörd \"quoted\" 'single' = ; $HOME\nsecond line"


def _seeded(cls: type, options: Options, namespace: str, value: str) -> tuple[Any, str]:
    """A provider built from ``properties``, opened on a fresh home, and the name of a secret seeded in it."""
    from pydantic import ValidationError

    if options.seed is None:
        raise CheckSkipped(
            f"give the conformance class a `seed` fixture: seed(home, namespace, name, value) puts "
            f"a secret where {cls.type} reads it"
        )
    try:
        provider = cls.model_validate(options.properties)
    except ValidationError as exc:
        raise CheckSkipped(
            f"cannot build the provider from `properties` {options.properties!r}: give the "
            f"conformance class a `properties` fixture ({exc.error_count()} errors)"
        ) from None
    home = Path(tempfile.mkdtemp(prefix="tiercel-conformance-"))
    name = f"CONFORMANCE_{secrets.token_hex(4).upper()}"
    result = options.seed(home, namespace, name, value)
    if inspect.isawaitable(result):
        raise CheckSkipped("`seed` must be a plain function")
    provider.open(home)
    return provider, name


def check_lookup(cls: type, options: Options) -> None:
    provider, name = _seeded(cls, options, NAMESPACE, VALUE)
    got = provider.get(name, NAMESPACE)
    fail(
        []
        if got == VALUE
        else [
            f"{cls.type}: get({name!r}, {NAMESPACE!r}) gave {got!r}, expected the seeded "
            f"{VALUE!r}; return the value exactly as stored"
        ]
    )


def check_inherited(cls: type, options: Options) -> None:
    provider, name = _seeded(cls, options, NAMESPACE, "inherited-value")
    got = provider.get(name, f"{NAMESPACE}.team.sub")
    fail(
        []
        if got == "inherited-value"
        else [
            f"{cls.type}: a secret of namespace `{NAMESPACE}` read from `{NAMESPACE}.team.sub` gave {got!r}; look in "
            f"each parent namespace too (SecretProvider.lineage(namespace))"
        ]
    )


def check_missing(cls: type, options: Options) -> None:
    provider, _ = _seeded(cls, options, NAMESPACE, "present")
    try:
        got = provider.get("CONFORMANCE_NEVER_SET", NAMESPACE)
    except Exception as exc:
        fail(
            [
                f"{cls.type}: get() of an unknown secret raised {type(exc).__name__}: {exc}; return None so that "
                f"the next provider is asked"
            ]
        )
        return
    fail([] if got is None else [f"{cls.type}: get() of an unknown secret gave {got!r}, expected None"])
