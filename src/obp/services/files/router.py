"""File HTTP routes under a namespace: streamed upload, ranged download, stat, list, delete."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from obp.http.deps import PlatformDep, PrincipalDep
from obp.http.problems import problem_responses
from obp.http.ranges import if_range_allows, parse_range
from obp.kernel.errors import InvalidInput, PreconditionFailed
from obp.kernel.etags import matches, parse_etags
from obp.kernel.paging import MAX_LIMIT
from obp.services.files.form import StreamingForm, boundary_of
from obp.services.files.model import FileRecord
from obp.services.files.schemas import FilePage, FileStat
from obp.services.files.upload import UploadFields

router = APIRouter(prefix="/api/v1/namespaces/{ns}/files", tags=["files"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string"},
                        "content_type": {"type": "string"},
                        "metadata": {"type": "string", "description": "a JSON object"},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "",
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses=problem_responses(404, 409, 413, 422, 503),
    summary="Upload a file (multipart form, or the raw body with its name in a header)",
)
async def upload_file(
    ns: str,
    request: Request,
    response: Response,
    platform: PlatformDep,
    principal: PrincipalDep,
    x_obp_file_name: Annotated[
        str | None, Header(description="Raw uploads: the file name, percent-encoded UTF-8")
    ] = None,
    x_obp_metadata: Annotated[
        str | None, Header(description="Raw uploads: user metadata, a JSON object")
    ] = None,
) -> FileStat:
    """Stream the bytes to the blob store; the file exists once they are durable."""
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        form = StreamingForm(request.stream(), boundary=boundary_of(content_type))
        fields, chunks = form.fields, form.chunks()
    else:
        fields = UploadFields(
            name=_decoded_name(x_obp_file_name),
            content_type=content_type or None,
            metadata=x_obp_metadata,
            locations={
                "name": ("header", "X-OBP-File-Name"),
                "content_type": ("header", "Content-Type"),
                "metadata": ("header", "X-OBP-Metadata"),
            },
        )
        chunks = request.stream()
    record = await platform.files.upload(
        principal=principal, namespace=ns, fields=fields, chunks=chunks
    )
    response.headers["Location"] = f"/api/v1/namespaces/{ns}/files/{record.id}"
    response.headers["ETag"] = record.etag
    return FileStat.of(record)


@router.get("", responses=problem_responses(404, 422), summary="List files")
async def list_files(
    ns: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    prefix: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> FilePage:
    """Files in name order, one page at a time."""
    page = await platform.files.list(
        principal=principal, namespace=ns, prefix=prefix, cursor=cursor, limit=limit
    )
    return FilePage(items=[FileStat.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{file_id}/stat", responses=problem_responses(404), summary="A file's metadata")
async def stat_file(
    ns: str, file_id: str, platform: PlatformDep, principal: PrincipalDep
) -> FileStat:
    """Size, sha256, name, content type, metadata and creation time."""
    return FileStat.of(
        await platform.files.stat(principal=principal, namespace=ns, file_id=file_id)
    )


_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The whole file"},
    206: {"content": {"application/octet-stream": {}}, "description": "The range asked for"},
    304: {"description": "Not modified (If-None-Match)"},
    **problem_responses(404, 412, 416),
}


@router.get("/{file_id}", responses=_DOWNLOAD, summary="Download a file, or a byte range of it")
async def download_file(
    ns: str,
    file_id: str,
    request: Request,
    platform: PlatformDep,
    principal: PrincipalDep,
) -> Response:
    """The bytes, honouring Range, If-Range and If-None-Match."""
    return await _answer(request, platform, principal, ns, file_id, body=True)


@router.head("/{file_id}", responses=_DOWNLOAD, summary="A file's headers, without the bytes")
async def head_file(
    ns: str,
    file_id: str,
    request: Request,
    platform: PlatformDep,
    principal: PrincipalDep,
) -> Response:
    """What GET would answer, without the body."""
    return await _answer(request, platform, principal, ns, file_id, body=False)


@router.delete(
    "/{file_id}", status_code=204, responses=problem_responses(404, 412), summary="Delete a file"
)
async def delete_file(
    ns: str,
    file_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    if_match: Annotated[str | None, Header(description="Only if the file is this one")] = None,
) -> Response:
    """Delete the file and its bytes; 204 whether or not it existed, 412 if If-Match fails."""
    await platform.files.delete(
        principal=principal,
        namespace=ns,
        file_id=file_id,
        if_match=parse_etags(if_match, header="If-Match"),
    )
    return Response(status_code=204)


async def _answer(
    request: Request,
    platform: PlatformDep,
    principal: PrincipalDep,
    ns: str,
    file_id: str,
    *,
    body: bool,
) -> Response:
    record = await platform.files.stat(principal=principal, namespace=ns, file_id=file_id)
    headers = _validators(record)
    if_match = parse_etags(request.headers.get("if-match"), header="If-Match")
    if if_match is not None and not matches(if_match, record.etag, weak=False):
        raise PreconditionFailed(f"If-Match: file {file_id!r} has another etag")
    if_none_match = parse_etags(request.headers.get("if-none-match"), header="If-None-Match")
    if if_none_match is not None and matches(if_none_match, record.etag, weak=True):
        return Response(status_code=304, headers=headers)
    wanted = (
        parse_range(request.headers.get("range"), record.size)
        if if_range_allows(request.headers.get("if-range"), record.etag)
        else None
    )
    status, offset, length = 200, 0, record.size
    if wanted is not None:
        status, offset, length = 206, wanted.start, wanted.length
        headers["Content-Range"] = wanted.content_range
    headers["Content-Length"] = str(length)
    headers["Content-Disposition"] = _disposition(record.name)
    # The stored type as given (media_type= would append a charset), and tenants' content
    # never sniffed or run as a page of this origin.
    headers["Content-Type"] = record.content_type
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Security-Policy"] = "sandbox"
    if not body:
        return Response(status_code=status, headers=headers)
    chunks = await platform.files.read(record=record, offset=offset, length=length)
    return StreamingResponse(chunks, status_code=status, headers=headers)


def _decoded_name(header: str | None) -> str:
    try:
        return unquote(header or "", errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidInput.field(
            ("header", "X-OBP-File-Name"), "must be percent-encoded UTF-8"
        ) from exc


def _validators(record: FileRecord) -> dict[str, str]:
    return {
        "ETag": record.etag,
        "Accept-Ranges": "bytes",
        "Last-Modified": record.created_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }


def _disposition(name: str) -> str:
    base = name.rsplit("/", 1)[-1] or "file"
    return f"inline; filename*=UTF-8''{quote(base, safe='')}"
