"""`tiercel namespace files`: the files kept per namespace beside the flows (code, queries, data)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import click

from tiercel.cli.run import home_option


def _files(home: Path | None, create: bool = False) -> Any:
    """The namespace files of the home's storage; reading never creates a home."""
    from tiercel.engine.namespace_files import NamespaceFiles
    from tiercel.engine.storage import InternalStorage, resolve_backend
    from tiercel.home import default_home
    from tiercel.plugins import get_registry

    home = home or default_home()
    if not create and not home.is_dir():
        raise click.ClickException(f"no namespace files: there is no home at {home} "
                                   "(point --home / $TIERCEL_HOME at another home)")
    return NamespaceFiles(InternalStorage(resolve_backend(home, get_registry())))


def _checked(fn: Any, *args: Any) -> Any:
    from tiercel.api import StorageError
    from tiercel.engine.namespace_files import NamespaceFileError

    try:
        return fn(*args)
    except (NamespaceFileError, StorageError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def namespace() -> None:
    """Namespace resources: files kept beside the flows."""


@namespace.group()
def files() -> None:
    """Upload, list, download and delete a namespace's files (read by `read('path')` and `namespaceFiles`)."""


@files.command()
@click.argument("namespace")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("destination", required=False)
@home_option
def upload(namespace: str, source: Path, destination: str | None, home: Path | None) -> None:
    """Upload SOURCE (a file, or a folder and everything in it) as NAMESPACE's files, under DESTINATION."""
    store = _files(home, create=True)
    if source.is_dir():
        if destination:
            raise click.ClickException("a folder is uploaded as the namespace's root; give no DESTINATION")
        names = _checked(store.upload_dir, namespace, source)
    else:
        name = _checked(store.normalise, destination or source.name)
        _checked(store.put, namespace, name, source)
        names = [name]
    for name in names:
        click.echo(f"+ {namespace}/{name}")


@files.command("list")
@click.argument("namespace")
@click.option("--include", multiple=True, help="Only paths matching this glob (repeatable).")
@home_option
def list_(namespace: str, include: tuple[str, ...], home: Path | None) -> None:
    """List NAMESPACE's files."""
    for name in _files(home).list(namespace, list(include) or None):
        click.echo(name)


@files.command()
@click.argument("namespace")
@click.argument("path")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@home_option
def download(namespace: str, path: str, output: Path | None, home: Path | None) -> None:
    """Print file PATH of NAMESPACE (or write it to --output)."""
    store = _files(home)
    try:
        stream = _checked(store.open, namespace, path)
    except FileNotFoundError:
        raise click.ClickException(f"no file `{path}` in namespace {namespace}") from None
    with stream:
        if output is None:
            shutil.copyfileobj(stream, click.get_binary_stream("stdout"))
        else:
            with open(output, "wb") as out:
                shutil.copyfileobj(stream, out)


@files.command()
@click.argument("namespace")
@click.argument("path")
@home_option
def delete(namespace: str, path: str, home: Path | None) -> None:
    """Delete file PATH of NAMESPACE."""
    if not _checked(_files(home).delete, namespace, path):
        raise click.ClickException(f"no file `{path}` in namespace {namespace}")
    click.echo(f"- {namespace}/{path}")
