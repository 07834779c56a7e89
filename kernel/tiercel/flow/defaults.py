"""Plugin defaults beyond a flow's own: per namespace and global, from the configuration file.

``tiercel.yaml`` (``$TIERCEL_CONFIG``, else in the home: ``tiercel.config.path``) may hold::

    pluginDefaults:                 # global: every flow
      - {type: core.Log, values: {level: DEBUG}}
    namespaces:
      company:                      # company and every namespace below it
        pluginDefaults:
          - {type: scripts, values: {taskRunner: {type: core.Process}}, forced: true}

Precedence, nearest first: the flow's own, then its namespace's, then each parent
namespace's, then the global ones. A default fills a property the task leaves out; a
``forced`` one replaces the task's own value too. Among defaults setting one property, the
nearest level wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tiercel.flow.model import PluginDefault

_cache: dict[Path, tuple[float, Any]] = {}


class DefaultsError(ValueError):
    """The configuration file's defaults are invalid; the message names the file and the entry."""


def _config() -> tuple[Path, dict[str, Any]]:
    import yaml

    from tiercel.config import path as config_path

    path = config_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return path, {}
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return path, cached[1]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DefaultsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DefaultsError(f"{path}: expected a mapping (pluginDefaults, namespaces…)")
    _cache[path] = (mtime, data)
    return path, data


def _parse(path: Path, where: str, items: Any) -> list[PluginDefault]:
    from pydantic import ValidationError

    if items is None:
        return []
    if not isinstance(items, list):
        raise DefaultsError(f"{path}: {where} must be a list of {{type, values, forced}}")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(PluginDefault.model_validate(item))
        except ValidationError as exc:
            raise DefaultsError(
                f"{path}: {where}[{i}]: {exc.errors()[0]['msg']} ({'.'.join(map(str, exc.errors()[0]['loc']))})"
            ) from None
    return out


def outer_defaults(namespace: str) -> list[tuple[str, PluginDefault]]:
    """(level, default) of the namespace, its parents and the global level, nearest first."""
    path, data = _config()
    if not data:
        return []
    namespaces = data.get("namespaces") or {}
    if not isinstance(namespaces, dict):
        raise DefaultsError(f"{path}: `namespaces` must map namespace names to their settings")
    parts = namespace.split(".") if namespace else []
    out: list[tuple[str, PluginDefault]] = []
    for i in range(len(parts), 0, -1):
        ns = ".".join(parts[:i])
        settings = namespaces.get(ns) or {}
        if not isinstance(settings, dict):
            raise DefaultsError(f"{path}: namespaces.{ns} must be a mapping with `pluginDefaults`")
        out += [
            (f"namespace {ns}", d)
            for d in _parse(path, f"namespaces.{ns}.pluginDefaults", settings.get("pluginDefaults"))
        ]
    out += [("global", d) for d in _parse(path, "pluginDefaults", data.get("pluginDefaults"))]
    return out


def ordered(flow_defaults: list[PluginDefault], outer: list[tuple[str, PluginDefault]]) -> list[PluginDefault]:
    """Every default in the order the loader applies them so that the nearest level wins: defaults
    that fill gaps nearest first (the first to fill a property keeps it), then forced ones farthest
    first (the last to write a property keeps it)."""
    chain = [("flow", d) for d in flow_defaults] + outer
    return [d for _, d in chain if not d.forced] + [d for _, d in reversed(chain) if d.forced]
