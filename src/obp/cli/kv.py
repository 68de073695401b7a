"""`obp kv`: a namespace's key-value store, raw bytes in and out."""

from __future__ import annotations

import base64
import mimetypes
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from obp.cli.common import JsonOption, UrlOption, call, connect, emit
from obp.client import DEFAULT_URL

app = typer.Typer(help="Manage a namespace's key-value store.", no_args_is_help=True)

NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", envvar="OBP_NAMESPACE", help="The namespace")
]
IfMatchOption = Annotated[
    str | None, typer.Option("--if-match", help="Only if the key's etag still is this one")
]


def _etag(given: str | None) -> str | None:
    """The etag as the header wants it: quoted (a bare one, as copied from a terminal, too)."""
    if given is None or given == "*" or given.startswith(('"', 'W/"')):
        return given
    return f'"{given}"'


@app.command("set")
def kv_set(
    key: str,
    namespace: NamespaceOption,
    value: Annotated[
        str | None, typer.Argument(help="The value as text; omit it to read --file or stdin")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the value from a file")] = None,
    content_type: Annotated[
        str | None, typer.Option(help="Media type (default: text, guessed, or octet-stream)")
    ] = None,
    ttl: Annotated[int | None, typer.Option(help="Expire after this many seconds")] = None,
    if_match: IfMatchOption = None,
    if_absent: Annotated[
        bool, typer.Option("--if-absent", help="Only if the key has none")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Store a value: the argument (as UTF-8 text), a file, or stdin (bytes, as they come)."""
    if value is not None and file is not None:
        raise typer.BadParameter("give the value or --file, not both", param_hint="VALUE")
    data: bytes | str
    if value is not None:
        data = value
    elif file is not None:
        if not file.is_file():
            raise typer.BadParameter(f"{file} is not a readable file", param_hint="--file")
        data = file.read_bytes()
        content_type = content_type or mimetypes.guess_type(file.name)[0]
    else:
        data = sys.stdin.buffer.read()
    with connect(url) as sdk:
        stored = call(
            lambda: sdk.kv.set(
                namespace,
                key,
                data,
                content_type=content_type,
                ttl=ttl,
                if_match=_etag(if_match),
                if_absent=if_absent,
            )
        )
    emit(stored, as_json, lambda s: f"stored {s['key']} version {s['version']} etag {s['etag']}")


@app.command("get")
def kv_get(
    key: str,
    namespace: NamespaceOption,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the value to this file")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Write a value's bytes to stdout exactly as stored (or to --output; --json: metadata)."""
    with connect(url) as sdk:
        found = call(lambda: sdk.kv.get(namespace, key))
    assert found is not None  # no If-None-Match was sent
    if as_json:
        described: dict[str, Any] = {
            "key": found.key,
            "content_type": found.content_type,
            "etag": found.etag,
            "size": len(found.value),
            "expires_at": found.expires_at,
        }
        try:
            described["value"] = found.value.decode()
        except UnicodeDecodeError:
            described["value_base64"] = base64.b64encode(found.value).decode()
        emit(described, True, str)
    elif output is not None:
        output.write_bytes(found.value)
    else:
        sys.stdout.buffer.write(found.value)
        sys.stdout.buffer.flush()


@app.command("list")
def kv_list(
    namespace: NamespaceOption,
    prefix: Annotated[str | None, typer.Option(help="Only keys starting with this")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List keys with their size, type and version (never values)."""
    with connect(url) as sdk:
        items = call(lambda: list(sdk.kv.iterate(namespace, prefix=prefix)))
    emit(
        items,
        as_json,
        lambda rows: (
            "\n".join(
                f"{r['key']:<40} {r['size']:>10}  {r['content_type']:<28} v{r['version']}"
                for r in rows
            )
            or "no keys"
        ),
    )


@app.command("delete")
def kv_delete(
    key: str,
    namespace: NamespaceOption,
    if_match: IfMatchOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Delete a key (idempotent)."""
    with connect(url) as sdk:
        call(lambda: sdk.kv.delete(namespace, key, if_match=_etag(if_match)))
    emit({"deleted": key}, as_json, lambda d: f"deleted {d['deleted']}")
