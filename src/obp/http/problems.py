"""RFC 9457 problem details: the one place kernel errors become HTTP status codes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import Match

from obp.kernel import errors

PROBLEM_MEDIA_TYPE = "application/problem+json"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

log = structlog.get_logger("obp.http")

STATUS_BY_ERROR: Mapping[type[errors.ObpError], int] = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.PayloadTooLarge: 413,
    errors.RangeNotSatisfiable: 416,
    errors.UnsupportedMediaType: 415,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
    errors.ConfigurationError: 500,
}


class ProblemField(BaseModel):
    """One invalid field: its location and what is wrong with it, and what is accepted."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem details body."""

    type: str = Field(default="about:blank", description="A URI naming the kind of problem")
    title: str
    status: int
    detail: str
    errors: list[ProblemField] = Field(default_factory=list)
    request_id: str | None = None


def problem_type(status: int) -> str:
    """The `type` URI of problems with this status."""
    phrase = (
        HTTPStatus(status).phrase.lower().replace(" ", "-")
        if status in HTTPStatus._value2member_map_
        else "error"
    )
    return f"urn:obp:problem:{phrase}"


def problem_response(
    status: int,
    *,
    detail: str,
    title: str | None = None,
    field_errors: Sequence[ProblemField] = (),
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body = Problem(
        type=problem_type(status),
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        errors=list(field_errors),
        request_id=request_id,
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem bodies for these statuses."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


async def _obp_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ObpError)
    status = next((code for kind, code in STATUS_BY_ERROR.items() if isinstance(exc, kind)), 500)
    fields = [ProblemField(loc=list(e.loc), msg=e.msg) for e in getattr(exc, "errors", ())]
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="obp"'
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    if status == 413:
        # The rest of the body was never read: the connection cannot carry another request.
        headers["Connection"] = "close"
    if isinstance(exc, errors.RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if status == 503:
        headers["Retry-After"] = "5"
    elif status >= 500:
        log.error("request failed", error=type(exc).__name__, detail=exc.detail)
    return problem_response(
        status,
        title=exc.title,
        detail=exc.detail,
        field_errors=fields,
        request_id=_request_id(request),
        headers=headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        ProblemField(
            loc=[part for part in error.get("loc", ()) if part is not None], msg=_message(error)
        )
        for error in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(str(p) for p in f.loc)}: {f.msg}" for f in fields[:5])
    return problem_response(
        422,
        title="Invalid input",
        detail=f"{len(fields)} invalid field{'s' if len(fields) != 1 else ''}: {summary}",
        field_errors=fields,
        request_id=_request_id(request),
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    elif exc.status_code == 413:
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        detail = f"the request body exceeds the limit of {limit} bytes"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
        detail = (
            f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        )
    return problem_response(
        exc.status_code, detail=detail, request_id=_request_id(request), headers=headers
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts on this path (Starlette names only the first route's)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    ]


def _message(error: Mapping[str, Any]) -> str:
    """Pydantic's message, plus what is accepted where pydantic knows it."""
    message = str(error.get("msg", "is invalid"))
    if error.get("type") == "extra_forbidden":
        return "is not a field of this resource; remove it"
    if error.get("type") == "missing":
        return "is required"
    context = error.get("ctx") or {}
    if "pattern" in context and "pattern" not in message:
        message += f" (pattern {context['pattern']})"
    return message


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with problem+json."""
    app.add_exception_handler(errors.ObpError, _obp_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
