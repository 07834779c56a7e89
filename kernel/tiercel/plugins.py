"""Plugin discovery: entry points in group ``tiercel``, loaded with pluggy, into one registry.

The registry keeps the pluggy ``PluginManager``: contribution hooks are called through it by
keyword (an implementation may take fewer arguments; tryfirst/trylast and wrappers work),
one plugin at a time so that each contribution is recorded with its distribution; decision
(``resolve_*``) and notification (``on_*``) hooks are called through ``registry.hook``.
``TIERCEL_TRACE_PLUGINS=1`` prints every hook call with its implementations and result.

A broken, misspelled or incompatible plugin never crashes the kernel: it is recorded with
its error and shown by ``tiercel plugins list``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiercel import API_VERSION

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    import pluggy

KINDS = ("task", "trigger", "runner", "storage", "secret")
#: Contributions that are not components: CLI commands, expression functions and filters.
EXTENSIONS = ("command", "function", "filter")
_HOOK_KIND = {"register_tasks": "task", "register_triggers": "trigger",
              "register_runners": "runner", "register_storages": "storage",
              "register_secret_providers": "secret",
              "register_commands": "command", "register_expression_functions": "function",
              "register_filters": "filter"}
CORE_PLUGIN = "tiercel"
#: Bumped when the manifest's layout changes, so an older cache is never read.
MANIFEST_FORMAT = 3
#: Names no plugin command may take (the kernel's own commands).
RESERVED_COMMANDS = frozenset({"validate", "schema", "plugins", "run", "executions", "flows", "server", "executor",
                               "worker", "scheduler", "webserver", "triggers", "plugin",
                               "secrets", "kv", "namespace", "test", "config"})


@dataclass
class ComponentInfo:
    """One registered component type and where it came from.

    The class itself is imported on first use of ``cls``: a registry read from the plugin
    manifest knows every type without importing the plugins that provide them.
    """

    kind: str
    type: str
    dist: str
    version: str
    aliases: tuple[str, ...]
    summary: str
    path: str  # "module:QualName", how to import the class
    _cls: type | None = field(default=None, repr=False)

    @classmethod
    def of(cls, kind: str, component: type, dist: str, version: str) -> ComponentInfo:
        doc = (component.__doc__ or "").strip()
        return cls(kind, component.type, dist, version, tuple(component.aliases), doc.splitlines()[0] if doc else "",
                   f"{component.__module__}:{component.__qualname__}", component)

    @property
    def cls(self) -> type:
        if self._cls is None:
            self._cls = _import_path(self.path)
        return self._cls


def _import_path(path: str) -> Any:
    module, _, qualname = path.partition(":")
    obj: Any = import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class ExtensionInfo:
    """One CLI command, expression function or filter a plugin contributed, imported on first use."""

    kind: str
    name: str
    dist: str
    summary: str
    path: str  # "module:QualName" (a command: "module:variable")
    _obj: Any = field(default=None, repr=False)

    @property
    def obj(self) -> Any:
        if self._obj is None:
            self._obj = _import_path(self.path)
        return self._obj


@dataclass
class PluginInfo:
    """One installed plugin distribution, loaded or not."""

    name: str
    version: str
    entry_point: str
    module: str
    api: str | None = None
    components: list[ComponentInfo] = field(default_factory=list)
    extensions: list[ExtensionInfo] = field(default_factory=list)
    #: Decision and notification hooks (``resolve_*``, ``on_*``) the plugin implements.
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        kinds: dict[str, list[str]] = {k: [] for k in (*KINDS, *EXTENSIONS)}
        for c in self.components:
            kinds[c.kind].append(c.type)
        for e in self.extensions:
            kinds[e.kind].append(e.name)
        return {"name": self.name, "version": self.version, "entryPoint": self.entry_point,
                "module": self.module, "api": self.api, "components": kinds, "hooks": self.hooks,
                "errors": self.errors, "skipped": self.skipped}


class Registry:
    """The table of component types by kind, with their aliases."""

    def __init__(self) -> None:
        self.plugins: dict[str, PluginInfo] = {}
        self._by_kind: dict[str, dict[str, ComponentInfo]] = {k: {} for k in KINDS}
        self._suggestions: dict[tuple[str, str], str | None] = {}  # (kind, misspelt type) -> hint
        self._canonical: dict[str, dict[str, ComponentInfo]] = {k: {} for k in KINDS}
        self._extensions: dict[str, dict[str, ExtensionInfo]] = {k: {} for k in EXTENSIONS}
        self._pm: pluggy.PluginManager | None = None
        self._builtin_hooks: set[str] | None = None

    @property
    def hook(self) -> Any:
        """pluggy's hook relay for decision and notification hooks: ``registry.hook.on_execution_end(execution=…)``.

        A registry read from the manifest imports, on first use, only the plugins whose
        manifest says they implement such hooks.
        """
        if self._pm is None:
            self._pm = _manager()
            for plugin in self.plugins.values():
                if plugin.hooks and not plugin.errors and not plugin.skipped:
                    try:
                        self._pm.register(import_module(plugin.module), name=plugin.name)
                    except Exception as exc:  # it imported when the manifest was written: report, go on
                        plugin.errors.append(f"cannot import {plugin.module}: {type(exc).__name__}: {exc}")
            from tiercel.observability import builtin_plugins

            for name, module in builtin_plugins():  # metrics and tracing: fed by the same hooks
                self._pm.register(module, name=name)
        return self._pm.hook

    def implements(self, hook_name: str) -> bool:
        """Whether any loaded plugin, or a built-in one (metrics, tracing), implements *hook_name*
        (cheap: no import when none does)."""
        if self._builtin_hooks is None:
            from tiercel.observability import builtin_hooks

            self._builtin_hooks = builtin_hooks()
        return hook_name in self._builtin_hooks or any(
            hook_name in p.hooks for p in self.plugins.values() if not p.errors and not p.skipped)

    def extensions(self, kind: str) -> dict[str, ExtensionInfo]:
        """Commands, expression functions or filters contributed by plugins, by name."""
        return self._extensions[kind]

    def get(self, kind: str, type_name: str) -> ComponentInfo | None:
        return self._by_kind[kind].get(type_name)

    def find(self, type_name: str) -> ComponentInfo | None:
        """A component of any kind by type name or alias."""
        for kind in KINDS:
            info = self._by_kind[kind].get(type_name)
            if info:
                return info
        return None

    def types(self, kind: str) -> list[str]:
        """Canonical type names of *kind*, sorted."""
        return sorted(self._canonical[kind])

    def components(self, kind: str | None = None) -> list[ComponentInfo]:
        kinds = [kind] if kind else KINDS
        return [self._canonical[k][t] for k in kinds for t in sorted(self._canonical[k])]

    def suggest(self, kind: str, type_name: str) -> str | None:
        """The closest known type name, for 'did you mean' messages; None unless really close.

        The class name must be close (``Logg`` -> ``core.Log``), never just the shared package
        prefix (``log.Fetch`` is not ``core.Switch``); answers are cached, since validating a
        folder of flows asks for the same misspelling again and again.
        """
        key = (kind, type_name)
        if key not in self._suggestions:
            self._suggestions[key] = self._suggest(kind, type_name)
        return self._suggestions[key]

    def _suggest(self, kind: str, type_name: str) -> str | None:
        import difflib

        names = list(self._by_kind[kind])
        lowered = {n.lower(): n for n in names}
        if type_name.lower() in lowered:
            return self._by_kind[kind][lowered[type_name.lower()]].type
        package, _, short = type_name.rpartition(".")
        best, best_score = None, 0.0
        for name in names:
            cand_package, _, cand_short = name.rpartition(".")
            score = difflib.SequenceMatcher(None, short.lower(), cand_short.lower()).ratio()
            if score < 0.75:
                continue
            score += 0.1 * difflib.SequenceMatcher(None, package, cand_package).ratio()
            if score > best_score:
                best, best_score = name, score
        return None if best is None else self._by_kind[kind][best].type  # the canonical name, even for an alias

    def with_component(self, cls: type, dist: str = "tiercel-probe", replace: bool = False) -> Registry:
        """A copy of this registry with *cls* registered under *dist* (the registry's probes, tests).

        With *replace*, *cls* takes over the type of the component of the same name. Raises
        ValueError when *cls* cannot be registered.
        """
        import copy

        from tiercel.api import Runner, SecretProvider, Storage, Task, Trigger

        kind = next((k for k, base in (("task", Task), ("trigger", Trigger), ("runner", Runner), ("storage", Storage),
                                       ("secret", SecretProvider))
                     if isinstance(cls, type) and issubclass(cls, base)), None)
        if kind is None:
            raise ValueError(f"{cls!r} is not a Tiercel component (subclass tiercel.Task, Trigger, Runner, Storage "
                             f"or SecretProvider)")
        other = Registry()
        other.plugins = dict(self.plugins)
        other._by_kind = {k: dict(v) for k, v in self._by_kind.items()}
        other._suggestions = {}
        other._canonical = {k: dict(v) for k, v in self._canonical.items()}
        other._extensions = {k: dict(v) for k, v in self._extensions.items()}
        other._pm = self._pm
        if replace:
            existing = other._by_kind[kind].get(cls.type)  # type: ignore[attr-defined]
            if existing is not None:
                for name in (existing.type, *existing.aliases):
                    other._by_kind[kind].pop(name, None)
                other._canonical[kind].pop(existing.type, None)
        plugin = other.plugins[dist] = copy.copy(other.plugins.get(dist) or PluginInfo(dist, "0", "probe", cls.__module__))
        plugin.components = list(plugin.components)
        error = other._add(kind, cls, plugin)
        if error:
            raise ValueError(error)
        return other

    def _add(self, kind: str, cls: type, plugin: PluginInfo) -> str | None:
        """Register *cls*; return an error message instead when it cannot be."""
        from tiercel.api import (
            ExecutionTrigger,
            PollingTrigger,
            RealtimeTrigger,
            Runner,
            ScheduleTrigger,
            SecretProvider,
            Storage,
            Task,
            Trigger,
            WebhookTrigger,
        )

        base = {"task": Task, "trigger": Trigger, "runner": Runner, "storage": Storage, "secret": SecretProvider}[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            hook = "register_secret_providers" if kind == "secret" else f"register_{kind}s"
            return f"{hook} got {cls!r}, which is not a subclass of tiercel.{base.__name__}"
        kinds = (PollingTrigger, RealtimeTrigger, ScheduleTrigger, ExecutionTrigger, WebhookTrigger)
        if kind == "trigger" and not issubclass(cls, kinds):
            return (f"trigger {cls.__name__} must subclass a trigger kind: tiercel.PollingTrigger, RealtimeTrigger, "
                    f"ScheduleTrigger, ExecutionTrigger or WebhookTrigger")
        if not getattr(cls, "type", ""):
            return f"{cls.__name__} has no `type` class attribute (e.g. type = \"{plugin.name.removeprefix('tiercel-')}.{cls.__name__}\")"
        info = ComponentInfo.of(kind, cls, plugin.name, plugin.version)
        for name in (cls.type, *cls.aliases):
            other = self._by_kind[kind].get(name)
            if other is not None:
                return (f"{kind} type `{name}` is claimed by both {other.dist} {other.version} and "
                        f"{plugin.name} {plugin.version}; uninstall one of them")
        for name in (cls.type, *cls.aliases):
            self._by_kind[kind][name] = info
        self._canonical[kind][cls.type] = info
        self._suggestions.clear()
        plugin.components.append(info)
        return None


    def _add_extension(self, kind: str, name: Any, obj: Any, plugin: PluginInfo) -> str | None:
        """Register a command, expression function or filter; return an error message instead when it cannot be."""
        if kind == "command":
            import click

            if not isinstance(obj, click.Command) or not obj.name:
                return f"register_commands got {obj!r}, which is not a named click.Command"
            name = obj.name
            if name in RESERVED_COMMANDS:
                return f"command `tiercel {name}` is the kernel's own; pick another name"
            summary = obj.get_short_help_str(limit=80)
            path = _command_path(obj)
        else:
            hook = "register_expression_functions" if kind == "function" else "register_filters"
            if not (isinstance(name, str) and name.isidentifier()) or not callable(obj):
                return f"{hook} expects register(name, function) with an identifier name, got {name!r}"
            doc = (getattr(obj, "__doc__", None) or "").strip()
            summary = doc.splitlines()[0] if doc else ""
            path = f"{obj.__module__}:{obj.__qualname__}"
        other = self._extensions[kind].get(name)
        if other is not None:
            return (f"{kind} `{name}` is claimed by both {other.dist} and {plugin.name}; uninstall one of them")
        info = ExtensionInfo(kind, name, plugin.name, summary, path, obj)
        self._extensions[kind][name] = info
        plugin.extensions.append(info)
        return None


def _command_path(command: Any) -> str:
    """``module:variable`` of a module-level click command (``<locals>`` when it has none: not cached)."""
    module = getattr(command.callback, "__module__", None) or ""
    for name, value in vars(sys.modules.get(module, object())).items():
        if value is command:
            return f"{module}:{name}"
    return f"{module}:<locals>"


def _manager() -> pluggy.PluginManager:
    """A PluginManager with Tiercel's hookspecs (and tracing when ``TIERCEL_TRACE_PLUGINS`` is set)."""
    import pluggy

    from tiercel import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("TIERCEL_TRACE_PLUGINS"):
        def before(hook_name: str, impls: list, kwargs: dict) -> None:
            names = ", ".join(i.plugin_name for i in impls) or "no implementation"
            args = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items())
            sys.stderr.write(f"tiercel plugins: {hook_name}({args}) -> [{names}]\n")

        def after(outcome: Any, hook_name: str, impls: list, kwargs: dict) -> None:
            exc = outcome.exception
            result = f"raised {type(exc).__name__}: {exc}" if exc is not None else f"returned {_short(outcome.get_result())}"
            sys.stderr.write(f"tiercel plugins: {hook_name} {result}\n")

        pm.add_hookcall_monitoring(before, after)
    return pm


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _allowed() -> set[str] | None:
    raw = os.environ.get("TIERCEL_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _check_api(module: Any, plugin: PluginInfo) -> bool:
    declared = getattr(module, "TIERCEL_API", None)
    plugin.api = declared
    if declared is None:
        return True
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        compatible = API_VERSION in SpecifierSet(declared)
    except InvalidSpecifier:
        plugin.skipped = f"invalid TIERCEL_API {declared!r} (expected a range such as '>=1.0,<2')"
        return False
    if not compatible:
        plugin.skipped = f"built for kernel API {declared}, this kernel provides {API_VERSION}"
    return compatible


def load_registry(eps: list[EntryPoint] | None = None) -> Registry:
    """Load every plugin of the ``tiercel`` entry-point group into a new registry.

    ``TIERCEL_PLUGINS=a,b`` restricts loading to those entry-point or distribution names
    (the core plugin always loads; an empty value loads only the core).
    """
    from importlib.metadata import EntryPoint, entry_points

    import pluggy

    from tiercel import hookspecs

    registry = Registry()
    pm = registry._pm = _manager()
    allowed = _allowed()
    if eps is None:
        eps = list(entry_points(group="tiercel"))
    core = [ep for ep in eps if ep.dist is not None and ep.dist.name == CORE_PLUGIN]
    if not core:  # a source checkout without installed metadata still has its core plugin
        eps = [EntryPoint("core", "tiercel.core.plugin", "tiercel"), *eps]
    for ep in eps:
        dist = ep.dist.name if ep.dist is not None else CORE_PLUGIN
        version = ep.dist.version if ep.dist is not None else _kernel_version()
        plugin = registry.plugins.setdefault(dist, PluginInfo(dist, version, ep.name, ep.value))
        if allowed is not None and dist != CORE_PLUGIN and not ({ep.name, dist} & allowed):
            plugin.skipped = "not in TIERCEL_PLUGINS"
            continue
        try:
            module = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin is reported, never fatal
            plugin.errors.append(f"cannot import {ep.value}: {type(exc).__name__}: {exc}")
            continue
        if not _check_api(module, plugin):
            continue
        try:
            pm.register(module, name=dist)
        except Exception as exc:
            plugin.errors.append(f"invalid hook implementation: {exc}")
            continue
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            known = sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "tiercel_spec"))
            unknown = [c.name for c in pm.get_hookcallers(module) or [] if c.name not in known] + \
                [n for n in dir(module) if hasattr(getattr(module, n), "tiercel_impl") and n not in known]
            import difflib

            close = difflib.get_close_matches(unknown[0], known, n=1) if unknown else []
            hint = f"; did you mean `{close[0]}`?" if close else ""
            pm.unregister(name=dist)
            plugin.errors.append(f"{exc}{hint} known hooks: {', '.join(known)}")
    for hook_name, kind in _HOOK_KIND.items():
        caller = getattr(pm.hook, hook_name)
        impls = caller.get_hookimpls()  # trylast ones first, each group in registration order
        for impl in sorted(impls, key=lambda i: (not i.tryfirst, i.trylast, impls.index(i))):
            plugin = registry.plugins[impl.plugin_name]
            others = [p for p in pm.get_plugins() if p is not impl.plugin]
            try:  # through pluggy, one plugin at a time: each contribution is recorded with its plugin
                pm.subset_hook_caller(hook_name, others)(register=_registrar(registry, kind, plugin))
            except Exception as exc:
                plugin.errors.append(f"{hook_name} raised {type(exc).__name__}: {exc}")
    for name, plugin in registry.plugins.items():
        module = pm.get_plugin(name)
        if module is not None:
            plugin.hooks = sorted(c.name for c in pm.get_hookcallers(module) or [] if c.name not in _HOOK_KIND)
    from tiercel.observability import builtin_plugins

    for name, module in builtin_plugins():  # metrics and tracing: fed by the same hooks
        pm.register(module, name=name)
    return registry


def _registrar(registry: Registry, kind: str, plugin: PluginInfo) -> Any:
    """The ``register`` callback a contribution hook of *plugin* receives."""
    if kind in KINDS:
        def register(cls: type) -> None:
            error = registry._add(kind, cls, plugin)
            if error:
                plugin.errors.append(error)
    elif kind == "command":
        def register(command: Any) -> None:  # type: ignore[misc]
            error = registry._add_extension(kind, None, command, plugin)
            if error:
                plugin.errors.append(error)
    else:
        def register(name: str, function: Any) -> None:  # type: ignore[misc]
            error = registry._add_extension(kind, name, function, plugin)
            if error:
                plugin.errors.append(error)
    return register


def _kernel_version() -> str:
    from tiercel import __version__

    return __version__


def _fingerprint(module: str) -> list:
    """Names, sizes and mtimes of the files of *module*'s top-level package (found without importing it)."""
    try:
        spec = find_spec(module.split(".", 1)[0])
    except (ImportError, ValueError):
        return ["?"]
    if spec is None:
        return ["?"]
    roots = list(spec.submodule_search_locations or []) or ([spec.origin] if spec.origin else [])
    files = []
    for root in roots:
        if os.path.isfile(root):
            st = os.stat(root)
            files.append((root, st.st_size, st.st_mtime_ns))
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                if name.endswith(".py"):
                    st = os.stat(os.path.join(folder, name))
                    files.append((os.path.join(folder, name), st.st_size, st.st_mtime_ns))
    return sorted(files)


def _installed() -> list[tuple[str, str, str, str]]:
    """(entry point, module, distribution, version) of every ``tiercel`` entry point, sorted.

    Read straight from the ``*.dist-info`` folders on ``sys.path`` (the first distribution of a
    name wins, as with importlib.metadata), because importing importlib.metadata alone costs
    about 0.1 s: a process that finds its manifest never pays it.
    """
    import configparser

    found: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            base = os.path.join(folder or ".", name)
            dist, version = _name_version(base)
            normal = dist.lower().replace("_", "-").replace(".", "-")
            if not dist or normal in seen:
                continue
            seen.add(normal)
            try:
                with open(os.path.join(base, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            if "[tiercel]" not in text:
                continue
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            try:
                parser.read_string(text)
            except configparser.Error:
                continue
            found += [(ep, value.strip(), dist, version) for ep, value in parser.items("tiercel")]
    return sorted(found)


def _name_version(dist_info: str) -> tuple[str, str]:
    """Name and Version from a dist-info's METADATA (or an egg-info's PKG-INFO) header."""
    name = version = ""
    for meta in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(dist_info, meta), encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("Name:"):
                        name = line[5:].strip()
                    elif line.startswith("Version:"):
                        version = line[8:].strip()
                    elif not line.strip() or (name and version):
                        break
            return name, version
        except OSError:
            continue
    return name, version


def _manifest_path(installed: list[tuple[str, str, str, str]]) -> Path:
    """Where the manifest of exactly this set of installed plugins (and their code) is kept."""
    key: list[Any] = [MANIFEST_FORMAT, API_VERSION, os.environ.get("TIERCEL_PLUGINS")]
    for ep, value, dist, version in installed:
        key.append([ep, value, dist, version, _fingerprint(value)])
    digest = hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:24]
    root = os.environ.get("TIERCEL_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "tiercel" / f"registry-{digest}.json"


def _write_manifest(path: Path, registry: Registry) -> None:
    data = [{**{k: v for k, v in info.to_json().items() if k != "components"},
             "components": [[c.kind, c.type, list(c.aliases), c.summary, c.path] for c in info.components],
             "extensions": [[e.kind, e.name, e.summary, e.path] for e in info.extensions]}
            for info in registry.plugins.values()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
            json.dump(data, out)
        os.replace(out.name, path)
    except OSError:
        pass  # a read-only home only loses the speed-up


def _read_manifest(path: Path) -> Registry | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    registry = Registry()
    for p in data:
        plugin = registry.plugins[p["name"]] = PluginInfo(p["name"], p["version"], p["entryPoint"], p["module"],
                                                          p["api"], hooks=p["hooks"], errors=p["errors"],
                                                          skipped=p["skipped"])
        for kind, type_name, aliases, summary, import_path in p["components"]:
            info = ComponentInfo(kind, type_name, plugin.name, plugin.version, tuple(aliases), summary, import_path)
            for name in (type_name, *aliases):
                registry._by_kind[kind][name] = info
            registry._canonical[kind][type_name] = info
            plugin.components.append(info)
        for kind, name, summary, import_path in p["extensions"]:
            extension = registry._extensions[kind][name] = ExtensionInfo(kind, name, plugin.name, summary, import_path)
            plugin.extensions.append(extension)
    return registry


def discover() -> Registry:
    """The installed plugins' registry, from the manifest when nothing installed has changed.

    A full load imports every plugin; its result is kept as a manifest keyed on the plugins'
    versions and the sizes and times of their files, so the next process imports only the
    components its flows use. A registry with load errors is never cached (a missing
    dependency may be installed next).
    """
    path = _manifest_path(_installed())
    registry = _read_manifest(path) if path.exists() else None
    if registry is None:
        registry = load_registry()
        if not any(p.errors or (p.skipped and p.skipped != "not in TIERCEL_PLUGINS") for p in registry.plugins.values()) \
                and all("<locals>" not in c.path for c in registry.components()) \
                and all("<locals>" not in e.path for k in EXTENSIONS for e in registry.extensions(k).values()):
            _write_manifest(path, registry)
    return registry


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = discover()
    return _registry


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests; None reloads on next use)."""
    global _registry
    _registry = registry


__all__ = ["ComponentInfo", "ExtensionInfo", "PluginInfo", "Registry", "discover", "load_registry", "get_registry",
           "set_registry", "KINDS", "EXTENSIONS"]
