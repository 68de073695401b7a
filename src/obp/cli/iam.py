"""`obp iam policy|role|identity ...`: a namespace's access control."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from obp.cli.common import JsonOption, UrlOption, call, connect, emit, fail
from obp.client import DEFAULT_URL

app = typer.Typer(help="Manage policies, roles and identities.", no_args_is_help=True)
NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", envvar="OBP_NAMESPACE", help="The namespace")
]
ListOption = Annotated[list[str] | None, typer.Option(help="Repeat for several")]


def _kind_app(kind: str, singular: str) -> typer.Typer:
    """The list/get/delete commands every kind shares."""
    sub = typer.Typer(help=f"Manage {kind}.", no_args_is_help=True)

    @sub.command("list")
    def list_items(
        namespace: NamespaceOption,
        q: Annotated[str | None, typer.Option("--q", help="Part of the name")] = None,
        url: UrlOption = DEFAULT_URL,
        as_json: JsonOption = False,
    ) -> None:
        """List them by name."""
        with connect(url) as sdk:
            items = call(lambda: list(sdk.iam.iterate(namespace, kind, q=q)))
        emit(items, as_json, lambda rows: "\n".join(_row(r) for r in rows) or f"no {kind}")

    @sub.command("get")
    def get_item(item_id: str, namespace: NamespaceOption, url: UrlOption = DEFAULT_URL) -> None:
        """Show one (JSON)."""
        with connect(url) as sdk:
            found = call(lambda: sdk.iam.get(namespace, kind, item_id))
        emit(found, True, str)

    @sub.command("delete")
    def delete_item(item_id: str, namespace: NamespaceOption, url: UrlOption = DEFAULT_URL) -> None:
        """Delete one (idempotent)."""
        with connect(url) as sdk:
            call(lambda: sdk.iam.delete(namespace, kind, item_id))
        emit({}, False, lambda _: f"deleted {singular} {item_id}")

    app.add_typer(sub, name=singular)
    return sub


policy_app = _kind_app("policies", "policy")
role_app = _kind_app("roles", "role")
identity_app = _kind_app("identities", "identity")


@policy_app.command("create")
def policy_create(
    name: str,
    namespace: NamespaceOption,
    resource: ListOption = None,
    action: ListOption = None,
    description: str = "",
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Grant --action on --resource (each repeatable, `*` wildcards)."""
    body = {
        "name": name,
        "description": description,
        "resources": resource or [],
        "actions": action or [],
    }
    _create(url, namespace, "policies", body, as_json)


@role_app.command("create")
def role_create(
    name: str,
    namespace: NamespaceOption,
    policy: ListOption = None,
    description: str = "",
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """A role made of policy ids (--policy, repeatable)."""
    body = {"name": name, "description": description, "policies": policy or []}
    _create(url, namespace, "roles", body, as_json)


@identity_app.command("create")
def identity_create(
    name: str,
    namespace: NamespaceOption,
    policy: ListOption = None,
    role: ListOption = None,
    password_stdin: Annotated[bool, typer.Option(help="Set a password read from stdin")] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """An identity (a login) with policy and role ids attached."""
    body = {"name": name, "policies": policy or [], "roles": role or []}
    with connect(url) as sdk:
        created = call(lambda: sdk.iam.create(namespace, "identities", body))
        if password_stdin:
            password = sys.stdin.read().removesuffix("\n")
            call(lambda: sdk.iam.set_password(namespace, created["id"], password))
    emit(created, as_json, lambda c: f"created identity {c['name']} ({c['id']})")


@identity_app.command("block")
def identity_block(
    identity_id: str,
    namespace: NamespaceOption,
    unblock: Annotated[bool, typer.Option(help="Unblock instead")] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Block an identity (its next request is refused), or --unblock it."""
    with connect(url) as sdk:
        call(lambda: sdk.iam.set_blocked(namespace, identity_id, blocked=not unblock))
    emit({}, False, lambda _: f"{'unblocked' if unblock else 'blocked'} identity {identity_id}")


@identity_app.command("api-key")
def identity_api_key(
    identity_id: str,
    namespace: NamespaceOption,
    description: str = "",
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Create an API key for a service account; the secret is printed once."""
    with connect(url) as sdk:
        created = call(
            lambda: sdk.iam.create_api_key(namespace, identity_id, description=description)
        )
    emit(created, True, str)


def _create(url: str, namespace: str, kind: str, body: dict[str, Any], as_json: bool) -> None:
    if kind == "policies" and (not body["resources"] or not body["actions"]):
        fail("error: give at least one --resource and one --action")
    with connect(url) as sdk:
        created = call(lambda: sdk.iam.create(namespace, kind, body))
    emit(created, as_json, lambda c: f"created {c['name']} ({c['id']})")


def _row(item: dict[str, Any]) -> str:
    extra = ""
    if "actions" in item:
        extra = f"{json.dumps(item['actions'])} on {json.dumps(item['resources'])}"
    elif "active" in item:
        extra = "active" if item["active"] else "blocked"
    return f"{item['id']}  {item['name']:<32} {extra}"
