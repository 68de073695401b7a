"""`obp secret`: a namespace's sealed secrets."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from obp.cli.common import JsonOption, UrlOption, call, connect, emit
from obp.client import DEFAULT_URL

app = typer.Typer(help="Manage a namespace's secrets.", no_args_is_help=True)

NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", envvar="OBP_NAMESPACE", help="The namespace")
]


@app.command("set")
def secret_set(
    name: str,
    namespace: NamespaceOption,
    value: Annotated[
        str | None, typer.Argument(help="The value; omit it to read it from stdin")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Write a new version of a secret (from stdin keeps it out of shell history)."""
    text = value if value is not None else sys.stdin.read().removesuffix("\n")
    with connect(url) as sdk:
        stored = call(lambda: sdk.secrets.set(namespace, name, text, description=description))
    emit(stored, as_json, lambda s: f"stored secret {s['name']} version {s['version']}")


@app.command("get")
def secret_get(
    name: str,
    namespace: NamespaceOption,
    version: Annotated[int | None, typer.Option(help="An older version")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Print a secret's value (the whole record with --json)."""
    with connect(url) as sdk:
        found = call(lambda: sdk.secrets.get(namespace, name, version=version))
    emit(found, as_json, lambda s: str(s["value"]))


@app.command("list")
def secret_list(
    namespace: NamespaceOption,
    prefix: Annotated[str | None, typer.Option(help="Only names starting with this")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List secret names and versions (never values)."""
    with connect(url) as sdk:
        items = call(lambda: list(sdk.secrets.iterate(namespace, prefix=prefix)))
    emit(
        items,
        as_json,
        lambda rows: (
            "\n".join(f"{s['name']:<40} v{s['version']:<5} {s['description']}" for s in rows)
            or "no secrets"
        ),
    )


@app.command("delete")
def secret_delete(
    name: str,
    namespace: NamespaceOption,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Delete every version of a secret (idempotent)."""
    with connect(url) as sdk:
        call(lambda: sdk.secrets.delete(namespace, name))
    emit({"deleted": name}, as_json, lambda d: f"deleted secret {d['deleted']}")
