"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from obp import __version__
from obp.bootstrap import Platform, start_platform
from obp.http import health
from obp.http.metrics import HttpMetrics
from obp.http.middleware import RequestContextMiddleware
from obp.http.problems import install_error_handlers
from obp.logs import configure_logging
from obp.services.audit.router import router as audit_router
from obp.services.files.router import router as files_router
from obp.services.iam.credential_router import router as credential_router
from obp.services.iam.identity_router import router as identity_router
from obp.services.iam.router import router as iam_router
from obp.services.iam.token_router import oauth_router
from obp.services.kv.router import router as kv_router
from obp.services.namespaces.router import router as namespaces_router
from obp.services.secrets.router import router as secrets_router
from obp.services.vault.router import router as vault_router
from obp.settings import Settings


def create_app(settings: Settings | None = None, *, platform: Platform | None = None) -> FastAPI:
    """An app serving `platform`, or one it starts from `settings` in its lifespan."""
    settings = settings or (platform.settings if platform else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if platform is not None:
            app.state.platform = platform
            yield
            return
        started = await start_platform(settings)
        app.state.platform = started
        try:
            yield
        finally:
            await started.stop()

    metrics = HttpMetrics()
    app = FastAPI(
        title="OBP",
        summary="Open Business Platform: a multi-tenant backend platform",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestContextMiddleware, metrics=metrics),
        ],
    )
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(health.router)
    # The limit is set per router, not on the app, so it runs inside RequestContextMiddleware
    # (which turns its 413 into problem+json); routers taking large bodies set their own.
    for router in (
        namespaces_router,
        secrets_router,
        vault_router,
        iam_router,
        identity_router,
        oauth_router,
        credential_router,
        audit_router,
    ):
        app.include_router(router, max_body_size=settings.max_request_bytes)
    # A value is the whole body: the key-value store's own limit (413 beyond it).
    app.include_router(kv_router, max_body_size=settings.kv_max_value_bytes)
    # Uploads stream through; the service counts the file's own bytes against the limit, and a
    # multipart form may add its boundaries and fields around them.
    app.include_router(files_router, max_body_size=settings.max_file_bytes + 1024 * 1024)
    return app


def app_factory() -> FastAPI:
    """The entry point Granian (or uvicorn) loads in each worker: settings from the environment."""
    settings = Settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return create_app(settings)
