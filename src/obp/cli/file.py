"""`obp file`: a namespace's files, streamed both ways."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from obp.cli.common import JsonOption, UrlOption, call, connect, emit
from obp.client import DEFAULT_URL

app = typer.Typer(help="Manage a namespace's files.", no_args_is_help=True)

NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", envvar="OBP_NAMESPACE", help="The namespace")
]


def _line(stat: dict[str, Any]) -> str:
    return f"{stat['id']}  {stat['size']:>12}  {stat['content_type']:<28} {stat['name']}"


@app.command("put")
def file_put(
    path: Annotated[Path, typer.Argument(help="The file to upload; '-' reads stdin")],
    namespace: NamespaceOption,
    name: Annotated[str | None, typer.Option(help="Stored name (default: the file's)")] = None,
    content_type: Annotated[str | None, typer.Option(help="Media type (default: guessed)")] = None,
    metadata: Annotated[str | None, typer.Option(help="User metadata, a JSON object")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Upload a file and print its id."""
    extra = None
    if metadata is not None:
        try:
            extra = json.loads(metadata)
        except ValueError as exc:
            raise typer.BadParameter("must be a JSON object", param_hint="--metadata") from exc
    source = sys.stdin.buffer if str(path) == "-" else path
    if str(path) != "-" and not path.is_file():
        raise typer.BadParameter(f"{path} is not a readable file", param_hint="PATH")
    with connect(url) as sdk:
        stored = call(
            lambda: sdk.files.put(
                namespace, source, name=name, content_type=content_type, metadata=extra
            )
        )
    emit(stored, as_json, lambda s: f"stored file {s['id']} ({s['size']} bytes, {s['sha256']})")


@app.command("get")
def file_get(
    file_id: str,
    namespace: NamespaceOption,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout")] = None,
    start: Annotated[int | None, typer.Option(help="First byte of a range")] = None,
    end: Annotated[int | None, typer.Option(help="Last byte of a range (inclusive)")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Download a file, or a byte range of it."""
    with connect(url) as sdk:
        if output is None:
            call(
                lambda: sdk.files.download(
                    namespace, file_id, sys.stdout.buffer, start=start, end=end
                )
            )
            sys.stdout.buffer.flush()
            return
        with output.open("wb") as target:
            call(lambda: sdk.files.download(namespace, file_id, target, start=start, end=end))


@app.command("stat")
def file_stat(
    file_id: str,
    namespace: NamespaceOption,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Show a file's size, sha256, name, content type and metadata."""
    with connect(url) as sdk:
        stat = call(lambda: sdk.files.stat(namespace, file_id))
    emit(stat, as_json, lambda s: "\n".join(f"{k:<13} {v}" for k, v in s.items()))


@app.command("list")
def file_list(
    namespace: NamespaceOption,
    prefix: Annotated[str | None, typer.Option(help="Only names starting with this")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List files in name order."""
    with connect(url) as sdk:
        items = call(lambda: list(sdk.files.iterate(namespace, prefix=prefix)))
    emit(items, as_json, lambda rows: "\n".join(_line(s) for s in rows) or "no files")


@app.command("delete")
def file_delete(
    file_id: str,
    namespace: NamespaceOption,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Delete a file (idempotent)."""
    with connect(url) as sdk:
        call(lambda: sdk.files.delete(namespace, file_id))
    emit({"deleted": file_id}, as_json, lambda _: f"deleted file {file_id}")
