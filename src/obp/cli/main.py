"""`obp`: run the platform and manage it over its REST API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from obp import __version__
from obp.cli import file, iam, kv, secret
from obp.cli.common import JsonOption, UrlOption, call, connect, emit
from obp.cli.login import login, logout
from obp.cli.serve import serve
from obp.client import DEFAULT_URL

app = typer.Typer(
    name="obp",
    help="OBP, the Open Business Platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
namespace_app = typer.Typer(help="Manage namespaces (tenants).", no_args_is_help=True)
app.add_typer(namespace_app, name="namespace")
app.add_typer(secret.app, name="secret")
app.add_typer(iam.app, name="iam")
app.add_typer(file.app, name="file")
app.add_typer(kv.app, name="kv")
app.command(help="Run the platform: HTTP API and background work.")(serve)
app.command(help="Log in and keep the tokens for later commands.")(login)
app.command(help="Revoke the stored login.")(logout)


@app.command()
def version(as_json: JsonOption = False) -> None:
    """Print the version of this OBP."""
    emit({"version": __version__}, as_json, lambda data: f"obp {data['version']}")


@namespace_app.command("create")
def namespace_create(
    name: str,
    full_name: Annotated[str, typer.Option(help="Display name")] = "",
    description: Annotated[str, typer.Option(help="Free text")] = "",
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Create a namespace."""
    with connect(url) as sdk:
        created = call(
            lambda: sdk.namespaces.create(name, full_name=full_name, description=description)
        )
    emit(created, as_json, lambda ns: f"created namespace {ns['name']}")


@namespace_app.command("get")
def namespace_get(name: str, url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """Show one namespace."""
    with connect(url) as sdk:
        found = call(lambda: sdk.namespaces.get(name))
    emit(found, as_json, _describe)


@namespace_app.command("list")
def namespace_list(
    q: Annotated[
        str | None, typer.Option("--q", help="Only names or texts containing this")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List namespaces (all pages)."""
    with connect(url) as sdk:
        items = call(lambda: list(sdk.namespaces.iterate(q=q)))
    emit(items, as_json, lambda rows: "\n".join(_row(ns) for ns in rows) or "no namespaces")


@namespace_app.command("delete")
def namespace_delete(name: str, url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """Delete a namespace and all its data (idempotent)."""
    with connect(url) as sdk:
        call(lambda: sdk.namespaces.delete(name))
    emit({"deleted": name}, as_json, lambda data: f"deleted namespace {data['deleted']}")


def _row(ns: dict[str, Any]) -> str:
    return f"{ns['name']:<32} {ns.get('full_name', '')}"


def _describe(ns: dict[str, Any]) -> str:
    return "\n".join(f"{key}: {value}" for key, value in ns.items())


def main() -> None:
    """Console entry point."""
    app(prog_name="obp")
