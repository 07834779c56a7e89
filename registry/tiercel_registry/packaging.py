"""Packaging checks of an installed plugin distribution, and what it contributes.

They read the installed metadata (and the source folder an editable or local install
points to), never the network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tiercel_registry.checks import CheckFailed, CheckSkipped

KERNEL = "tiercel"
ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
CHECKS = ("name", "entry_point", "loads", "api", "version", "readme", "changelog")
DESCRIPTIONS = {
    "name": "the distribution is named tiercel-<id>",
    "entry_point": "an entry point `<id> = \"tiercel_<id>.plugin\"` in group `tiercel`",
    "loads": "the plugin loads and registers at least one component, without errors",
    "api": "TIERCEL_API declares a kernel API range that includes this kernel's",
    "version": "a valid version is set",
    "readme": "a README is present",
    "changelog": "a CHANGELOG is present",
}


class NotInstalled(Exception):
    pass


def find(dist: str) -> Distribution:
    try:
        return distribution(dist)
    except PackageNotFoundError:
        raise NotInstalled(f"distribution `{dist}` is not installed (pip install it, e.g. `pip install -e path/to/{dist}`)") from None


def plugin_id(dist: Distribution) -> str:
    name = dist.metadata["Name"]
    return "core" if name == KERNEL else re.sub(r"[-_.]+", "-", name.lower()).removeprefix("tiercel-")


def source_dir(dist: Distribution) -> Path | None:
    """The folder a local or editable install came from (PEP 610 direct_url.json), if it still exists."""
    raw = dist.read_text("direct_url.json")
    if not raw:
        return None
    url = json.loads(raw).get("url", "")
    if not url.startswith("file://"):
        return None
    path = Path(unquote(urlparse(url).path))
    return path if path.is_dir() else None


@dataclass
class Loaded:
    dist: Distribution
    plugin: Any  # tiercel.plugins.PluginInfo
    module: Any  # the entry-point module, or None

    @property
    def components(self) -> list[Any]:
        from tiercel.plugins import KINDS

        return sorted(self.plugin.components, key=lambda c: (KINDS.index(c.kind), c.type))


_loaded: dict[str, Loaded] = {}


def load(dist_name: str) -> Loaded:
    """Load the plugin of *dist_name* alone (with the core plugin) into a fresh registry."""
    import importlib

    from tiercel.plugins import PluginInfo, load_registry

    if dist_name in _loaded:
        return _loaded[dist_name]
    dist = find(dist_name)
    eps = [ep for ep in dist.entry_points if ep.group == "tiercel"]
    registry = load_registry(eps)
    name = dist.metadata["Name"]
    plugin = registry.plugins.get(name) or PluginInfo(name, dist.version, "", "")
    module = None
    if eps:
        try:
            module = importlib.import_module(eps[0].module)
        except Exception:
            module = None
    _loaded[dist_name] = Loaded(dist, plugin, module)
    return _loaded[dist_name]


def components_of(dist_name: str) -> list[type]:
    return [c.cls for c in load(dist_name).components]


def run_packaging_check(check: str, dist_name: str) -> None:
    """Run one packaging check; raise CheckFailed with what to fix."""
    globals()[f"check_{check}"](load(dist_name))


def _well_named(dist: Distribution) -> bool:
    normal = re.sub(r"[-_.]+", "-", dist.metadata["Name"].lower())
    return normal.startswith("tiercel-") and bool(ID_PATTERN.match(normal.removeprefix("tiercel-")))


def check_name(loaded: Loaded) -> None:
    name = loaded.dist.metadata["Name"]
    if name == KERNEL:
        return  # the core plugin ships inside the kernel distribution
    normal = re.sub(r"[-_.]+", "-", name.lower())
    if not _well_named(loaded.dist):
        raise CheckFailed(f"distribution `{name}` should be named `tiercel-<id>` (e.g. tiercel-{normal.split('-')[-1]}); "
                          f"set `name` in pyproject.toml")


def check_entry_point(loaded: Loaded) -> None:
    eps = [ep for ep in loaded.dist.entry_points if ep.group == "tiercel"]
    pid = plugin_id(loaded.dist)
    package = f"tiercel_{pid.replace('-', '_')}"
    want = f'[project.entry-points.tiercel]\n{pid} = "{package}.plugin"'
    if not eps:
        raise CheckFailed(f"no entry point in group `tiercel`; add to pyproject.toml:\n{want}")
    if len(eps) > 1:
        raise CheckFailed(f"{len(eps)} entry points in group `tiercel` ({', '.join(ep.name for ep in eps)}); "
                          f"declare one, named `{pid}`")
    ep = eps[0]
    if loaded.dist.metadata["Name"] == KERNEL or not _well_named(loaded.dist):
        return  # the name check reports a badly named distribution
    problems = []
    if ep.name != pid:
        problems.append(f"the entry point is named `{ep.name}`, expected `{pid}` (the distribution's id)")
    if ep.module.split(".")[0] != package:
        problems.append(f"the entry point points to `{ep.value}`, expected a module of the package `{package}`")
    if problems:
        raise CheckFailed("; ".join(problems) + f"; in pyproject.toml:\n{want}")


def check_loads(loaded: Loaded) -> None:
    plugin = loaded.plugin
    if not any(ep.group == "tiercel" for ep in loaded.dist.entry_points):
        raise CheckSkipped("nothing to load without an entry point (see entry_point)")
    if plugin.skipped and ("TIERCEL_API" in plugin.skipped or plugin.skipped.startswith("built for kernel API")):
        raise CheckSkipped(f"the kernel skipped it: {plugin.skipped} (see api)")
    if plugin.skipped:
        raise CheckFailed(f"the plugin was skipped: {plugin.skipped}")
    if plugin.errors:
        raise CheckFailed("the plugin does not load cleanly:\n" + "\n".join(plugin.errors))
    if not plugin.components:
        raise CheckFailed("the plugin registers no component: implement a hook such as "
                          "`@hookimpl def register_tasks(register): register(MyTask)`")


def check_api(loaded: Loaded) -> None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from tiercel import API_VERSION

    if loaded.module is None:
        raise CheckSkipped("the entry-point module cannot be imported (see loads)")
    declared = getattr(loaded.module, "TIERCEL_API", None)
    if declared is None:
        raise CheckFailed(f"the entry-point module declares no kernel API range; add `TIERCEL_API = \">={API_VERSION},<"
                          f"{int(API_VERSION.split('.')[0]) + 1}\"` to it")
    try:
        spec = SpecifierSet(declared)
    except InvalidSpecifier:
        raise CheckFailed(f"TIERCEL_API {declared!r} is not a version range (e.g. \">=1.0,<2\")") from None
    if API_VERSION not in spec:
        raise CheckFailed(f"TIERCEL_API {declared!r} excludes this kernel's API {API_VERSION}; test against it and "
                          f"widen the range")


def check_version(loaded: Loaded) -> None:
    from packaging.version import InvalidVersion, Version

    raw = loaded.dist.metadata["Version"]
    try:
        if not raw or Version(raw) == Version("0"):
            raise InvalidVersion(raw)
    except InvalidVersion:
        raise CheckFailed(f"version {raw!r} is not set or not valid: set `version = \"0.1.0\"` in pyproject.toml") from None


def _has_file(loaded: Loaded, stem: str) -> bool:
    source = source_dir(loaded.dist)
    if source is not None and any(p.stem.upper() == stem and p.stat().st_size for p in source.glob("*") if p.is_file()):
        return True
    return any(Path(str(f)).stem.upper() == stem for f in loaded.dist.files or [])


def check_readme(loaded: Loaded) -> None:
    body = loaded.dist.metadata.get_payload() or loaded.dist.metadata.get("Description") or ""
    if str(body).strip() or _has_file(loaded, "README"):
        return
    raise CheckFailed("no README: add README.md (what the plugin does, a runnable example flow) and "
                      "`readme = \"README.md\"` in pyproject.toml")


def check_changelog(loaded: Loaded) -> None:
    urls = loaded.dist.metadata.get_all("Project-URL") or []
    if _has_file(loaded, "CHANGELOG") or any(u.split(",")[0].strip().lower() in ("changelog", "changes") for u in urls):
        return
    raise CheckFailed("no CHANGELOG: add CHANGELOG.md with a section per version (and a `Changelog` URL in "
                      "[project.urls] for installs from an index)")
