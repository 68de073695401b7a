"""The request context: request id, access log, metrics and the last-resort 500."""

from __future__ import annotations

import re
import time
from typing import Any

import structlog
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obp.http.metrics import HttpMetrics
from obp.http.problems import problem_response
from obp.kernel.ids import new_id

log = structlog.get_logger("obp.http")

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streams and cost latency)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False

        replacing_plain_413 = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started, replacing_plain_413
            if message["type"] == "http.response.start":
                if message["status"] == 413 and _is_plain_text(message):
                    # Starlette's body limiter answers text/plain when Content-Length is over
                    # the limit; every error here is problem+json, so swap its body for ours.
                    replacing_plain_413 = True
                    return
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            elif replacing_plain_413:
                if not message.get("more_body", False):
                    replacing_plain_413 = False
                    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
                    response = problem_response(
                        413,
                        detail=f"the request body exceeds the limit of {limit} bytes",
                        request_id=request_id,
                        # The body was not read: the connection cannot carry another request.
                        headers={"Connection": "close"},
                    )
                    await response(scope, receive, send_with_id)
                return
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", method=scope["method"], path=scope["path"])
            if response_started:
                raise  # too late for a problem body: let the server abort the response
            else:
                response = problem_response(
                    500,
                    detail="the server failed to answer; the request id identifies it in the logs",
                    request_id=request_id,
                )
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe(
                method=scope["method"], route=route, status=status, seconds=elapsed
            )
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            return text if _SAFE_REQUEST_ID.fullmatch(text) else None
    return None


def _is_plain_text(message: Message) -> bool:
    return any(
        name == b"content-type" and value.startswith(b"text/plain")
        for name, value in message.get("headers", [])
    )


def _route_template(scope: Scope) -> str:
    """The matched route's path template: bounded label cardinality, unlike raw paths."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
