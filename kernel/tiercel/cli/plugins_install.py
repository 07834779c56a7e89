"""`tiercel plugins install|upgrade|uninstall`: plugins by short name, through the registry index.

The index is the ``index.json`` that ``tiercel registry build`` writes (one entry per plugin
distribution: version, kernel API range, grade). A short name (``kafka``), a distribution
(``tiercel-kafka``) or a component type (``kafka.Produce``) resolves to an entry; the entry's
kernel API range is checked against this kernel *before* pip runs; pip then runs in this
interpreter (``sys.executable -m pip``), so the plugin lands where ``tiercel`` runs.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

INDEX_FORMAT = 1
ENV_INDEX = "TIERCEL_PLUGIN_INDEX"
CORE = "tiercel"


def _index_candidates() -> list[Path]:
    import tiercel

    package = Path(tiercel.__file__).resolve().parent
    # the wheel carries a copy of docs/reference/index.json; a checkout (editable install) has the file itself
    return [package / "plugin-index.json", package.parents[1] / "docs" / "reference" / "index.json"]


def load_index(source: str | None) -> tuple[dict[str, Any], str]:
    """The registry index from --index, $TIERCEL_PLUGIN_INDEX or the copy shipped with the kernel."""
    source = source or os.environ.get(ENV_INDEX)
    if source and source.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(source, timeout=30, follow_redirects=True)
            response.raise_for_status()
            text = response.text
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot read the plugin index {source}: {exc}") from None
    else:
        if source:
            path = Path(source)
        else:
            found = [p for p in _index_candidates() if p.is_file()]
            if not found:
                raise click.ClickException(f"no plugin index shipped with this tiercel; pass --index PATH|URL or set "
                                           f"{ENV_INDEX} (an index.json written by `tiercel registry build`)")
            path = found[0]
        source = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise click.ClickException(f"cannot read the plugin index {path}: {exc.strerror}; pass --index PATH|URL "
                                       f"or set {ENV_INDEX}") from None
    try:
        index = json.loads(text)
    except ValueError as exc:
        raise click.ClickException(f"the plugin index {source} is not JSON ({exc}); rebuild it with "
                                   "`tiercel registry build`") from None
    if not isinstance(index, dict) or not isinstance(index.get("plugins"), list):
        raise click.ClickException(f"{source} is not a plugin index (no `plugins` list); rebuild it with "
                                   "`tiercel registry build`")
    if int(index.get("index", 0)) > INDEX_FORMAT:
        raise click.ClickException(f"the plugin index {source} has format {index['index']}, newer than this tiercel "
                                   f"reads ({INDEX_FORMAT}); upgrade tiercel: `pip install -U tiercel`")
    return index, source


def short_name(dist: str) -> str:
    return "core" if dist == CORE else dist.removeprefix("tiercel-")


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def resolve(index: dict[str, Any], name: str) -> dict[str, Any]:
    """The index entry for a short name, a distribution name or a component type; or a did-you-mean error."""
    wanted = _norm(name)
    for entry in index["plugins"]:
        dist = _norm(entry["name"])
        if wanted in (dist, short_name(dist)) or (dist != CORE and f"tiercel-{wanted}" == dist):
            return entry
    for entry in index["plugins"]:
        if any(c["type"].lower() == name.strip().lower() for c in entry.get("components", [])):
            return entry
    names = sorted({short_name(e["name"]) for e in index["plugins"]})
    close = difflib.get_close_matches(wanted.removeprefix("tiercel-"), names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(f'`{c}`' for c in close)}? " if close else ""
    raise click.ClickException(f"no plugin `{name}` in the index; {hint}the index has: {', '.join(names)}")


def _split(spec: str) -> tuple[str, str | None]:
    name, sep, version = spec.partition("==")
    if sep and not version.strip():
        raise click.ClickException(f"`{spec}`: give a version after `==` (e.g. `{name}==1.0.0`) or none")
    return name.strip(), (version.strip() or None)


def check_compatible(entry: dict[str, Any]) -> None:
    """Refuse, before pip runs, a plugin the index says does not fit this kernel (both versions named)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from tiercel import API_VERSION, __version__

    dist = entry["name"]
    if entry.get("error") or not entry.get("api"):
        reason = entry.get("error") or "no kernel API range"
        raise click.ClickException(f"{dist} cannot be checked against this kernel: the index records {reason}; "
                                   "rebuild the index with `tiercel registry build` once the plugin installs")
    try:
        fits = API_VERSION in SpecifierSet(entry["api"])
    except InvalidSpecifier:
        raise click.ClickException(f"{dist} {entry['version']} declares an invalid kernel API range "
                                   f"{entry['api']!r} (TIERCEL_API); ask its maintainer to fix it") from None
    if not fits:
        raise click.ClickException(
            f"{dist} {entry['version']} is built for kernel API {entry['api']} (its TIERCEL_API), but this "
            f"tiercel {__version__} provides kernel API {API_VERSION}; nothing was installed. Install a "
            f"{dist} release built for API {API_VERSION} (`tiercel plugins install {short_name(dist)}==VERSION`) "
            f"or a tiercel whose kernel API its range includes")
    for text in entry.get("requires", []) or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if _norm(req.name) == CORE and req.specifier and not req.specifier.contains(__version__, prereleases=True):
            raise click.ClickException(f"{dist} {entry['version']} requires {text}, but this is tiercel {__version__}; "
                                       f"nothing was installed. Upgrade tiercel (`pip install -U 'tiercel{req.specifier}'`)")


def installed_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _newer(candidate: str, current: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(candidate) > Version(current)
    except InvalidVersion:
        return candidate != current


def _describe(entry: dict[str, Any]) -> str:
    from tiercel import API_VERSION

    score = f" ({entry['score']}/100)" if entry.get("score") is not None else ""
    return (f"{entry['name']} {entry['version']} · grade {entry.get('grade') or '?'}{score} · kernel API "
            f"{entry['api']} (this kernel: {API_VERSION})")


def _pip(args: list[str], dry_run: bool) -> None:
    command = [sys.executable, "-m", "pip", *args]
    click.echo("$ " + " ".join(["python -m pip", *args]))
    if dry_run:
        click.echo("(dry run: pip not started)")
        return
    done = subprocess.run(command)
    if done.returncode:
        raise click.ClickException(f"pip exited with status {done.returncode}; nothing changed in tiercel's plugins "
                                   "(see pip's message above; --index-url/--find-links choose where pip looks)")


def _verify(dist: str, spec: str) -> None:
    """After pip: load the plugin in a fresh process, the way the next `tiercel` command will."""
    listed = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "plugins", "list", "--json"],
                            capture_output=True, text=True, timeout=120)
    try:
        plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    except ValueError:
        raise click.ClickException(f"installed, but `tiercel plugins list` failed: {listed.stderr.strip()[-500:]}") from None
    plugin = plugins.get(dist)
    if plugin is None:
        raise click.ClickException(f"pip installed {dist}, but tiercel does not find its `tiercel` entry point; "
                                   f"is it a tiercel plugin? Remove it with `tiercel plugins uninstall {spec}`")
    problem = plugin["skipped"] or "; ".join(plugin["errors"])
    if problem:
        raise click.ClickException(f"{dist} {plugin['version']} installed but does not load: {problem}. "
                                   f"Remove it with `tiercel plugins uninstall {spec}`")
    types = [t for kind in plugin["components"].values() for t in kind]
    click.echo(f"installed {dist} {plugin['version']}: {', '.join(types) or 'no components'}")


_index_option = click.option("--index", "index_source", metavar="PATH|URL", default=None,
                             help=f"The registry index.json (default: ${ENV_INDEX}, else the one shipped with tiercel).")
_pip_options = [
    click.option("--index-url", default=None, help="Passed to pip: the package index to install from."),
    click.option("--extra-index-url", multiple=True, help="Passed to pip (repeatable)."),
    click.option("--find-links", "-f", multiple=True, help="Passed to pip: a folder or URL of wheels (repeatable)."),
    click.option("--no-index", is_flag=True, help="Passed to pip: only --find-links, no package index."),
    click.option("--dry-run", is_flag=True, help="Resolve, check and print the pip command without running it."),
]


def _with_pip_options(fn: Any) -> Any:
    for option in reversed(_pip_options):
        fn = option(fn)
    return _index_option(fn)


def _pip_passthrough(index_url: str | None, extra_index_url: tuple[str, ...], find_links: tuple[str, ...],
                     no_index: bool) -> list[str]:
    args: list[str] = []
    if index_url:
        args += ["--index-url", index_url]
    for url in extra_index_url:
        args += ["--extra-index-url", url]
    for link in find_links:
        args += ["--find-links", link]
    if no_index:
        args.append("--no-index")
    return args


def _core_refusal(action: str) -> click.ClickException:
    from tiercel import __version__

    hint = ("it comes with the kernel and cannot be removed alone; `pip uninstall tiercel` removes tiercel itself"
            if action == "uninstall" else f"it is part of the kernel (tiercel {__version__}); "
            "`pip install -U tiercel` upgrades it")
    return click.ClickException(f"`core` is the built-in core plugin: {hint}")


def _install(spec: str, upgrade: bool, index_source: str | None, dry_run: bool, pip_args: list[str]) -> None:
    name, version = _split(spec)
    index, source = load_index(index_source)
    entry = resolve(index, name)
    dist = entry["name"]
    if dist == CORE:
        raise _core_refusal("upgrade" if upgrade else "install")
    click.echo(_describe(entry))
    target = version or entry["version"]
    if target == entry["version"]:
        check_compatible(entry)
    else:
        click.echo(f"note: the index ({source}) graded {dist} {entry['version']}, not {version}; its kernel API is "
                   "checked once installed")
    current = installed_version(dist)
    if upgrade and current is None:
        raise click.ClickException(f"{dist} is not installed; install it with `tiercel plugins install {short_name(dist)}`")
    if current is not None and version is None:
        if _newer(entry["version"], current):
            if not upgrade:
                click.echo(f"{dist} {current} is already installed; `tiercel plugins upgrade {short_name(dist)}` "
                           f"installs the index's {entry['version']}")
                return
        else:
            click.echo(f"{dist} {current} is already installed and up to date with the index ({entry['version']})")
            return
    elif current is not None and current == version:
        click.echo(f"{dist} {current} is already installed")
        return
    args = ["install", f"{dist}=={target}", *pip_args]
    _pip(args, dry_run)
    if not dry_run:
        _verify(dist, short_name(dist))


@click.command("install")
@click.argument("spec", metavar="NAME[==VERSION]")
@_with_pip_options
def install(spec: str, index_source: str | None, index_url: str | None, extra_index_url: tuple[str, ...],
            find_links: tuple[str, ...], no_index: bool, dry_run: bool) -> None:
    """Install a plugin by short name (`kafka`), distribution (`tiercel-kafka`) or component type.

    The name is looked up in the registry index, the plugin's kernel API range (TIERCEL_API) is
    checked against this kernel before pip runs, and pip installs into the interpreter running
    tiercel. Without ==VERSION, the version the index graded is installed.
    """
    _install(spec, False, index_source, dry_run, _pip_passthrough(index_url, extra_index_url, find_links, no_index))


@click.command("upgrade")
@click.argument("name")
@_with_pip_options
def upgrade(name: str, index_source: str | None, index_url: str | None, extra_index_url: tuple[str, ...],
            find_links: tuple[str, ...], no_index: bool, dry_run: bool) -> None:
    """Upgrade an installed plugin to the version in the registry index (kernel API checked first)."""
    _install(name, True, index_source, dry_run, _pip_passthrough(index_url, extra_index_url, find_links, no_index))


@click.command("uninstall")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print the pip command without running it.")
def uninstall(name: str, dry_run: bool) -> None:
    """Uninstall a plugin (short name or distribution); the built-in core plugin is refused."""
    wanted = _norm(name)
    if wanted in ("core", CORE):
        raise _core_refusal("uninstall")
    dist = wanted if wanted.startswith("tiercel-") else f"tiercel-{wanted}"
    current = installed_version(dist)
    if current is None:
        from importlib import metadata

        installed = sorted({_norm(d.metadata["Name"] or "") for d in metadata.distributions()
                            if _norm(d.metadata["Name"] or "").startswith("tiercel-")})
        close = difflib.get_close_matches(dist, installed, n=1, cutoff=0.6)
        hint = f"did you mean `{short_name(close[0])}`? " if close else ""
        raise click.ClickException(f"{dist} is not installed; {hint}see `tiercel plugins list`")
    _pip(["uninstall", "--yes", dist], dry_run)
    if not dry_run:
        click.echo(f"uninstalled {dist} {current}")
