"""The configuration file, ``tiercel.yaml``: one documented place for a process's settings.

Found at ``$TIERCEL_CONFIG``, else ``tiercel.yaml`` in the home (``tiercel.home.default_home``).
Every setting is also an environment variable, which wins over the file (an empty one counts as
unset); the file's values are
exported to the environment when a ``tiercel`` command starts, so every part of the process
reads one place. Plugin defaults per namespace and global live in the same file
(``tiercel.flow.defaults``). The secret store's key is never read from the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_ENV = "TIERCEL_CONFIG"


@dataclass(frozen=True)
class Setting:
    key: str
    env: str
    default: str | None
    help: str
    secret: bool = False


SETTINGS = (
    Setting("home", "TIERCEL_HOME", None, "Home of the embedded backend: database, storage, work directories."),
    Setting("db", "TIERCEL_DB", None, "Database URL (`postgresql://user:password@host/db`, `sqlite:///path`); "
            "default: tiercel.db in the home."),
    Setting(
        "storage", "TIERCEL_STORAGE", "local", "Internal storage URI (`local`, `file:///path`, `s3://bucket/prefix`)."
    ),
    Setting(
        "secretProviders", "TIERCEL_SECRET_PROVIDERS", "[env, store]", "Secret providers, asked in order (YAML list)."
    ),
    Setting(
        "secretKey", "TIERCEL_SECRET_KEY", None, "Key of the encrypted secret store (environment only).", secret=True
    ),
    Setting("port", "TIERCEL_PORT", "8080", "HTTP port of `tiercel server` / `webserver`."),
    Setting("bind", "TIERCEL_BIND", "127.0.0.1", "Address the HTTP API listens on."),
    Setting("allowedHosts", "TIERCEL_ALLOWED_HOSTS", "", "Extra Host names the API answers (comma-separated)."),
    Setting("corsOrigins", "TIERCEL_CORS_ORIGINS", "", "Origins allowed to call the API from a browser."),
    Setting("plugins", "TIERCEL_PLUGINS", None, "Only load these plugins (comma-separated)."),
    Setting("cacheDir", "TIERCEL_CACHE_DIR", None, "Where plugin manifests and worker caches go."),
    Setting("namespaceQuotas", "TIERCEL_NAMESPACE_QUOTAS", None,
            "Max running executions per namespace and its children, across every process (map: `{team.etl: 4}`)."),
    Setting("leaseSeconds", "TIERCEL_LEASE_SECONDS", "10",
            "Seconds a worker's job stays leased without a heartbeat; then its attempt is LOST and runs again."),
)
#: Keys of the file that are not settings of SETTINGS.
OTHER_KEYS = ("pluginDefaults", "namespaces")
#: Property names masked when a setting's value is shown.
SECRET_WORDS = ("token", "secret", "password", "key")


#: Environment variables this process took from the file (shown as coming from it).
_from_file: set[str] = set()


class ConfigError(ValueError):
    """The configuration file is invalid; the message names it."""


def path() -> Path:
    from tiercel.home import default_home

    return Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else default_home() / "tiercel.yaml"


def read() -> dict[str, Any]:
    import yaml

    file = path()
    if not file.is_file():
        return {}
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of settings")
    known = {s.key for s in SETTINGS}
    unknown = sorted(set(data) - known - set(OTHER_KEYS))
    if unknown:
        raise ConfigError(
            f"{file}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known | set(OTHER_KEYS)))}"
        )
    if "secretKey" in data:
        raise ConfigError(f"{file}: secretKey is never read from a file: export TIERCEL_SECRET_KEY instead")
    return data


def export(data: dict[str, Any] | None = None) -> None:
    """Put the file's settings into the environment where the environment has none."""
    data = read() if data is None else data
    for setting in SETTINGS:
        if setting.key in data and not os.environ.get(setting.env):  # an empty variable counts as unset
            value = data[setting.key]
            _from_file.add(setting.env)
            if setting.key == "secretProviders" or isinstance(value, dict):
                os.environ[setting.env] = json.dumps(value)
            elif isinstance(value, list):
                os.environ[setting.env] = ",".join(map(str, value))
            else:
                os.environ[setting.env] = str(value)


def masked(value: Any) -> Any:
    """*value* with the values of secret-looking properties (token, secretId, password…) masked."""
    if isinstance(value, dict):
        return {
            k: "******" if any(w in k.lower() for w in SECRET_WORDS) and not isinstance(v, (dict, list)) else masked(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def effective() -> list[dict[str, Any]]:
    """Each setting's value and where it came from (env, file or default), secrets masked."""
    import yaml

    data = read()
    rows = []
    for s in SETTINGS:
        if s.key in data and (s.env in _from_file or not os.environ.get(s.env)):
            raw: Any = data[s.key]
            source = "file"
        elif os.environ.get(s.env):
            raw, source = os.environ[s.env], "env"
        else:
            raw, source = s.default, "default"
            if s.key == "home":
                from tiercel.home import default_home

                raw = str(default_home())
        if s.secret and raw:
            raw = "****** (set)"
        elif s.key == "secretProviders" and isinstance(raw, str):
            try:
                raw = masked(yaml.safe_load(raw))
            except yaml.YAMLError:
                pass
        elif s.key == "db" and raw:
            from tiercel.backend import mask_url

            raw = mask_url(str(raw))
        elif raw is not None:
            raw = masked(raw)
        rows.append({"key": s.key, "env": s.env, "value": raw, "source": source})
    return rows
