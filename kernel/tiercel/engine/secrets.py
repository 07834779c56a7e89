"""Secrets: the chain of configured providers, and masking their values wherever text leaves a run.

``TIERCEL_SECRET_PROVIDERS`` lists the providers a process asks, in order, as YAML: type names
or aliases (``[env, store]``, the default) or mappings with properties
(``[env, {type: file, path: /run/secrets}, {type: vault, url: "http://127.0.0.1:8200"}]``).

Masking replaces a secret's value by ``******``, and also its transformed forms: any other
case, base64 (standard and URL-safe, with or without padding), URL-encoding, JSON escaping,
reversed, and any run of 8 or more of its characters (a long prefix, a slice).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from tiercel.api import SecretProvider, TaskError

MASK = "******"
CONFIG_ENV = "TIERCEL_SECRET_PROVIDERS"
DEFAULT_PROVIDERS = "[env, store]"
#: Runs of this many characters of a longer secret are masked wherever they appear.
GRAM = 8


class SecretChain:
    """The providers of one process, asked in the configured order; the first value found wins."""

    def __init__(self, registry: Any, home: Path, config: str | None = None) -> None:
        self.registry = registry
        self.home = home
        self.config = config
        self._providers: list[SecretProvider] | None = None
        self._lock = threading.Lock()  # tasks running in threads may ask first at the same time

    @property
    def providers(self) -> list[SecretProvider]:
        """Built on first use, so a misconfiguration fails the tasks that read a secret, naming it."""
        with self._lock:
            if self._providers is None:
                self._providers = build_providers(self.registry, self.home, self.config)
            return self._providers

    def read(self, name: str, namespace: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise TaskError(f"secret(): a secret name is a non-empty string, got {name!r}")
        for provider in self.providers:
            value = provider.get(name, namespace)
            if value is not None:
                return value
        asked = "; ".join(p.where(name) for p in self.providers) or "no provider is configured"
        raise TaskError(f"secret `{name}` not found for namespace `{namespace}`; asked: {asked}")


def build_providers(registry: Any, home: Path, config: str | None = None) -> list[SecretProvider]:
    """The providers ``TIERCEL_SECRET_PROVIDERS`` (or *config*) asks for, each opened on *home*."""
    import yaml
    from pydantic import ValidationError

    text = config if config is not None else os.environ.get(CONFIG_ENV) or DEFAULT_PROVIDERS
    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaskError(f"{CONFIG_ENV} is not valid YAML: {exc}") from None
    if not isinstance(items, list):
        raise TaskError(f"{CONFIG_ENV} must be a YAML list such as `[env, store]`, got {text!r}")
    providers: list[SecretProvider] = []
    for i, item in enumerate(items):
        spec = {"type": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else None
        if spec is None or not isinstance(spec.get("type"), str):
            raise TaskError(f"{CONFIG_ENV}[{i}]: give a provider type (`env`) or a mapping with `type`, got {item!r}")
        type_name = spec.pop("type")
        info = registry.get("secret", type_name)
        if info is None:
            hint = registry.suggest("secret", type_name)
            known = ", ".join(registry.types("secret"))
            raise TaskError(
                f"{CONFIG_ENV}[{i}]: unknown secret provider `{type_name}`"
                + (f"; did you mean `{hint}`?" if hint else f" (installed: {known})")
            )
        try:
            provider: SecretProvider = info.cls.model_validate(spec)
        except ValidationError as exc:
            raise TaskError(f"{CONFIG_ENV}[{i}] ({type_name}): {exc}") from None
        provider.open(home)
        providers.append(provider)
    return providers


def sealer(home: Path) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """(seal, unseal) of values kept in the database, such as SECRET inputs: AES-GCM under
    ``TIERCEL_SECRET_KEY``, else under a key made once for the home (``<home>/secret.key``, mode 0600;
    processes on several hosts must share ``TIERCEL_SECRET_KEY`` instead)."""
    from tiercel.core.secrets import KEY_ENV, new_key, seal, unseal

    def key() -> bytes:
        raw = os.environ.get(KEY_ENV)
        if not raw:
            path = home / "secret.key"
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(new_key())
            raw = path.read_text().strip()
        return base64.b64decode(raw)

    return (lambda text: base64.b64encode(seal(key(), "", "$input", text)).decode(),
            lambda token: unseal(key(), "", "$input", base64.b64decode(token)))


class ExpressionFunction:
    """A function expressions may call (``secret``, ``kv``…), shown as its name: never as a Python
    object whose repr would tell about the process (``'{0!r}'.format(secret)``)."""

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name, self._fn = name, fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{self.name}()"

    __str__ = __repr__


# --- masking ------------------------------------------------------------------------------


def _variants(secret: str) -> set[str]:
    """The forms a value commonly takes on its way into a log line, lower-cased."""
    raw = secret.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {
        v.lower()
        for v in {
            secret,
            quote(secret, safe=""),
            quote_plus(secret),
            json.dumps(secret)[1:-1],
            *encoded,
            *(e.rstrip("=") for e in encoded),
            *_shifted_base64(raw),
        }
        if v
    }


def _shifted_base64(raw: bytes) -> set[str]:
    """The characters of base64 that depend only on *raw* when it follows 1 or 2 other bytes
    (``base64('user:' + secret)``), standard and URL-safe."""
    forms = set()
    for offset, skip in ((1, 2), (2, 3)):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(b"\0" * offset + raw).decode()[skip:].rstrip("=")
            if (offset + len(raw)) % 3:
                core = core[:-1]  # its last character also holds bits of whatever follows
            if len(core) > GRAM:
                forms.add(core)
    return forms


@functools.lru_cache(maxsize=256)
def _table(secrets: frozenset[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(runs of GRAM characters to mask, whole short values to mask), lower-cased."""
    grams: set[str] = set()
    exact: set[str] = set()
    for secret in secrets:
        forms = _variants(secret)
        if len(secret) > GRAM:
            forms.add(secret[::-1].lower())
        for form in forms:
            if len(form) > GRAM:
                grams.update(form[i : i + GRAM] for i in range(len(form) - GRAM + 1))
            else:
                exact.add(form)
    return frozenset(grams), tuple(sorted(exact, key=len, reverse=True))


def _mask_text(text: str, grams: frozenset[str], exact: tuple[str, ...]) -> str:
    low = text.lower()
    if len(low) != len(text):  # a few characters change length when lower-cased: compare as is
        low = text
    spans: list[tuple[int, int]] = []
    for form in exact:
        start = low.find(form)
        while start != -1:
            spans.append((start, start + len(form)))
            start = low.find(form, start + 1)
    if grams:
        spans += [(i, i + GRAM) for i in range(len(low) - GRAM + 1) if low[i : i + GRAM] in grams]
    if not spans:
        return text
    merged: list[list[int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, pos = [], 0
    for a, b in merged:
        out += [text[pos:a], MASK]
        pos = b
    out.append(text[pos:])
    return "".join(out)


def mask(value: Any, secrets: set[str]) -> Any:
    """*value* (str, list, dict, nested) with every secret in *secrets*, in any common form, replaced by ``******``."""
    live = frozenset(s for s in secrets if s)
    if not live:
        return value
    grams, exact = _table(live)
    return _mask(value, grams, exact)


def _mask(value: Any, grams: frozenset[str], exact: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _mask_text(value, grams, exact)
    if isinstance(value, dict):
        return {k: _mask(v, grams, exact) for k, v in value.items()}  # keys are structure (output names)
    if isinstance(value, (list, tuple)):
        return [_mask(v, grams, exact) for v in value]
    return value
