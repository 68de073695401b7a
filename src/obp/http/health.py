"""Liveness, readiness (every backend probed) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from obp.http.deps import PlatformDep
from obp.kernel.errors import Sealed, Unavailable
from obp.kernel.ports import Probe

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ok while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every configured backend answers")
async def readyz(platform: PlatformDep) -> JSONResponse:
    """200 when every backend answers, else 503; the body reports each one."""
    names = list(platform.probes)
    results = await asyncio.gather(*(_check(platform.probes[name]) for name in names))
    checks = dict(zip(names, results, strict=True))
    ready = all(check["status"] == "ok" for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Request counts and latency histograms per route, in the Prometheus text format."""
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def _check(probe: Probe) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe.ping(), timeout=PROBE_TIMEOUT_SECONDS)
    except Sealed as exc:
        return {"status": "sealed", "backend": probe.backend, "reason": exc.detail}
    except Unavailable as exc:
        return {"status": "unavailable", "backend": probe.backend, "reason": exc.detail}
    except TimeoutError:
        return {
            "status": "unavailable",
            "backend": probe.backend,
            "reason": f"no answer within {PROBE_TIMEOUT_SECONDS} s",
        }
    except Exception as exc:  # a probe must report, never break the report
        return {"status": "unavailable", "backend": probe.backend, "reason": type(exc).__name__}
    return {
        "status": "ok",
        "backend": probe.backend,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }
