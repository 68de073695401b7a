"""Bench-only variants of OBP's app, served exactly as `obp serve` serves the real one.

`unauthenticated_app` is the real app with authentication and authorization switched off, the
baseline of the `auth_get` scenario: every request runs as a fixed global admin, whatever
`Authorization` header it carries, and every access check allows. NEVER serve it outside a
benchmark: it answers every request of anybody.

`python -m bench.apps --host H --port P` runs `obp serve` (same settings, migration, preflight,
environment and Granian options) with Granian pointed at `unauthenticated_app` instead of
`obp.http.app:app_factory`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

from fastapi import FastAPI

from obp.bootstrap import Platform
from obp.http.app import create_app
from obp.http.deps import get_principal
from obp.kernel.auth import Principal
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.logs import configure_logging
from obp.settings import Settings

LOOPBACK = "127.0.0.1"
OBP_TARGET = "obp.http.app:app_factory"
UNAUTHENTICATED_TARGET = "bench.apps:unauthenticated_app"

# Who every request of the unauthenticated app runs as (no such identity exists; no check
# asks, see below).
BENCH_ADMIN = Principal(
    namespace=GLOBAL_NAMESPACE, identity="bench-unauthenticated", name="bench-unauthenticated"
)


async def _fixed_principal() -> Principal:
    return BENCH_ADMIN


async def _allow(principal: Principal, *, namespace: str, action: str, resource: str) -> None:
    """An access check that allows everything (bench-only)."""


def unauthenticated_app() -> FastAPI:
    """The app of `obp.http.app.app_factory`, minus token verification and authorization.

    BENCH-ONLY. The same routes, middleware, services and storage; only two things differ:
    - `get_principal` (the Bearer token -> `AccessControl.authenticate` dependency) is
      overridden to return `BENCH_ADMIN` without reading any header;
    - once the platform has started, its `AccessControl` instance's `require` is replaced by
      an async no-op. Every service was built with that same instance (`access=access` in
      `obp.bootstrap`) and checks through `self._access.require`, so nothing authorizes.
    """
    settings = Settings()
    if settings.host != LOOPBACK:
        raise RuntimeError(f"the unauthenticated app only listens on {LOOPBACK}")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings)
    app.dependency_overrides[get_principal] = _fixed_principal
    started = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with started(app) as state:
            platform: Platform = app.state.platform
            # BENCH-ONLY monkeypatch of the one AccessControl instance every service holds.
            platform.access.require = _allow  # type: ignore[method-assign]
            yield state

    app.router.lifespan_context = lifespan
    return app


def main(argv: list[str] | None = None) -> int:
    """`obp serve --host H --port P`, serving `unauthenticated_app`."""
    parser = argparse.ArgumentParser(prog="python -m bench.apps", description=main.__doc__)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.host != LOOPBACK:
        raise SystemExit(f"the unauthenticated app only listens on {LOOPBACK}")

    import granian

    from obp.cli.serve import serve

    real_granian = granian.Granian

    def retargeted(*pos: Any, **kwargs: Any) -> Any:
        # Everything `obp serve` passes to Granian is kept; only the app it loads changes.
        if kwargs.get("target") != OBP_TARGET:
            raise RuntimeError(f"obp serve no longer serves {OBP_TARGET}: update bench/apps.py")
        return real_granian(*pos, **{**kwargs, "target": UNAUTHENTICATED_TARGET})

    # `obp serve` imports Granian from the granian module when it starts serving.
    with mock.patch.object(granian, "Granian", retargeted):
        serve(host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
