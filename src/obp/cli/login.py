"""`obp login` and `obp logout`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from obp.cli import credentials
from obp.cli.common import JsonOption, UrlOption, call, connect, emit
from obp.client import DEFAULT_URL


def login(
    username: Annotated[str, typer.Option("--username", "-u", help="Login name")] = "admin",
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="The namespace the identity belongs to")
    ] = "global",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Log in and keep the tokens (renewed as needed) for later commands."""
    if password_stdin:
        password = sys.stdin.read().removesuffix("\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    with connect(url) as sdk:
        tokens = call(lambda: sdk.login(username, password, namespace=namespace))
    emit(
        {"namespace": tokens.namespace, "username": username},
        as_json,
        lambda d: f"logged in as {d['username']} in {d['namespace']}",
    )


def logout(url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """Revoke the stored refresh token and forget the login."""
    with connect(url) as sdk:
        call(sdk.logout)
    credentials.save(url, None)
    emit({"logged_out": url}, as_json, lambda d: f"logged out of {d['logged_out']}")
