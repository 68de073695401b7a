"""Key-value HTTP routes under a namespace: raw bytes in and out, entity tags, TTLs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from obp.http.deps import PlatformDep, PrincipalDep
from obp.http.problems import problem_responses
from obp.kernel.etags import parse_etags
from obp.kernel.paging import MAX_LIMIT
from obp.services.kv.model import (
    KEY_RULE,
    TTL_RULE,
    KvEntry,
    Preconditions,
    parse_ttl,
)
from obp.services.kv.schemas import KvItem, KvPage, KvWritten

router = APIRouter(prefix="/api/v1/namespaces/{ns}/kv", tags=["kv"])

EXPIRES_HEADER = "X-OBP-Expires-At"
_KEY_DOC = f"The key: {KEY_RULE}; percent-encode it in the URL"

Key = Annotated[str, Path(description=_KEY_DOC)]
IfMatch = Annotated[
    str | None, Header(description='Only if the current etag is listed (or "*": if any)')
]
IfNoneMatch = Annotated[
    str | None,
    Header(description='"*": only if absent (PUT); a listed etag: 304 (GET) or 412 (PUT)'),
]
_BYTES: dict[str, Any] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
_VALUE_HEADERS: dict[str, Any] = {
    "ETag": {"schema": {"type": "string"}, "description": "Entity tag of the content"},
    EXPIRES_HEADER: {"schema": {"type": "string"}, "description": "When it expires, if set"},
}


def _conditions(if_match: str | None, if_none_match: str | None) -> Preconditions:
    return Preconditions(
        if_match=parse_etags(if_match, header="if-match"),
        if_none_match=parse_etags(if_none_match, header="if-none-match"),
    )


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _headers(entry: KvEntry) -> dict[str, str]:
    headers = {"ETag": entry.etag}
    if entry.expires_at is not None:
        headers[EXPIRES_HEADER] = _timestamp(entry.expires_at)
    return headers


@router.put(
    "/{key:path}",
    responses={
        200: {"model": KvWritten, "description": "Replaced", "headers": _VALUE_HEADERS},
        201: {"model": KvWritten, "description": "Created", "headers": _VALUE_HEADERS},
        **problem_responses(404, 412, 413, 422, 503),
    },
    openapi_extra={"requestBody": {"required": True, "content": _BYTES}},
    summary="Store a value (raw bytes) under a key",
)
async def put_value(
    ns: str,
    key: Key,
    request: Request,
    response: Response,
    platform: PlatformDep,
    principal: PrincipalDep,
    content_type: Annotated[
        str | None, Header(description="Stored and returned with the value")
    ] = None,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
    x_obp_ttl: Annotated[str | None, Header(description=f"Expire after {TTL_RULE}")] = None,
) -> KvWritten:
    """201 when the key had no value, 200 when one was replaced; the body never echoes it."""
    # Read first: answering before the body is consumed leaves it on a keep-alive connection.
    value = await request.body()
    conditions = _conditions(if_match, if_none_match)
    ttl = parse_ttl(x_obp_ttl)
    entry, created = await platform.kv.put(
        principal=principal,
        namespace=ns,
        key=key,
        value=value,
        content_type=content_type,
        ttl=ttl,
        conditions=conditions,
    )
    response.status_code = 201 if created else 200
    response.headers.update(_headers(entry))
    return KvWritten.of(entry)


@router.get(
    "/{key:path}",
    response_class=Response,
    responses={
        200: {"content": _BYTES, "description": "The value", "headers": _VALUE_HEADERS},
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(404, 412, 422, 503),
    },
    summary="Read a value: its bytes, with its Content-Type and ETag",
)
async def get_value(
    ns: str,
    key: Key,
    platform: PlatformDep,
    principal: PrincipalDep,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The raw bytes as stored; 304 when `If-None-Match` lists the current etag."""
    entry, modified = await platform.kv.get(
        principal=principal,
        namespace=ns,
        key=key,
        conditions=_conditions(if_match, if_none_match),
    )
    if not modified:
        return Response(status_code=304, headers=_headers(entry))
    assert entry.value is not None
    # The type as stored: a media_type argument would have Starlette append a charset.
    headers = {**_headers(entry), "Content-Type": entry.content_type}
    return Response(content=entry.value, headers=headers)


@router.head(
    "/{key:path}",
    response_class=Response,
    responses={
        200: {"description": "The value's headers", "headers": _VALUE_HEADERS},
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(404, 412, 422, 503),
    },
    summary="A value's Content-Type, Content-Length and ETag, without its bytes",
)
async def head_value(
    ns: str,
    key: Key,
    platform: PlatformDep,
    principal: PrincipalDep,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """What GET would answer, without the body."""
    entry, modified = await platform.kv.get(
        principal=principal,
        namespace=ns,
        key=key,
        conditions=_conditions(if_match, if_none_match),
        with_value=False,
    )
    if not modified:
        return Response(status_code=304, headers=_headers(entry))
    headers = {
        **_headers(entry),
        "Content-Type": entry.content_type,
        "Content-Length": str(entry.size),
    }
    return Response(headers=headers)


@router.delete(
    "/{key:path}",
    status_code=204,
    responses=problem_responses(404, 412, 422, 503),
    summary="Delete a key",
)
async def delete_value(
    ns: str,
    key: Key,
    platform: PlatformDep,
    principal: PrincipalDep,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """204 whether or not the key had a value; `If-Match` makes it conditional."""
    await platform.kv.delete(
        principal=principal,
        namespace=ns,
        key=key,
        conditions=_conditions(if_match, if_none_match),
    )
    return Response(status_code=204)


@router.get("", responses=problem_responses(404, 422), summary="List keys (never values)")
async def list_keys(
    ns: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    prefix: Annotated[str | None, Query(description="Only keys starting with this")] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    cursor: Annotated[str | None, Query(max_length=8192)] = None,
) -> KvPage:
    """Keys and their metadata in code point order, one page at a time."""
    page = await platform.kv.list(
        principal=principal, namespace=ns, prefix=prefix, cursor=cursor, limit=limit
    )
    return KvPage(items=[KvItem.item(e) for e in page.items], next_cursor=page.next_cursor)
