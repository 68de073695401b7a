"""What every `obp` command shares: the server option, --json, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from obp.cli import credentials
from obp.client import Client, ObpApiError, ObpConnectionError

T = TypeVar("T")

UrlOption = Annotated[
    str, typer.Option("--url", envvar="OBP_URL", help="The OBP server to talk to")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def connect(url: str) -> Client:
    """A client of `url` using the login `obp login` stored, which it keeps renewed."""
    return Client(
        url,
        tokens=credentials.load(url),
        on_tokens=lambda tokens: credentials.save(url, tokens),
    )


def call(action: Callable[[], T]) -> T:
    """Run an API call; on error print one line to stderr and exit 1."""
    try:
        return action()
    except (ObpApiError, ObpConnectionError) as exc:
        fail(f"error: {exc}")


def fail(message: str) -> NoReturn:
    """Print one line to stderr and exit 1."""
    typer.echo(message.replace("\n", " "), err=True)
    raise typer.Exit(code=1)


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print `data` as JSON for scripts, or as `human` renders it."""
    typer.echo(json.dumps(data, indent=2) if as_json else human(data))
