"""`obp serve`: validate settings, migrate once, then run the roles this process plays."""

from __future__ import annotations

import asyncio
import os
import signal
import tomllib
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from obp.kernel.errors import ConfigurationError, Unavailable
from obp.settings import Settings

RoleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        help="api, worker or scheduler; repeat for several (default: all three)",
        show_default=False,
    ),
]


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8080]")] = None,
    workers: Annotated[int | None, typer.Option(help="HTTP worker processes [1]")] = None,
    role: RoleOption = None,
    data_dir: Annotated[
        str | None, typer.Option(help="Data of embedded backends [obp-data]")
    ] = None,
) -> None:
    """Run the platform: HTTP API, outbox relay and background work, per role."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("host", host),
            ("port", port),
            ("workers", workers),
            ("data_dir", data_dir),
        )
        if value is not None
    }
    if role:
        overrides["roles"] = role
    # Imported here, not at module level: `obp version` and friends should start fast.
    from obp.bootstrap import check_settings, preflight

    try:
        settings = Settings(**overrides)
        check_settings(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        _abort(f"invalid setting {where}: {first['msg']}")
    except (SettingsError, tomllib.TOMLDecodeError) as exc:
        _abort(f"invalid settings: {exc}")
    except ConfigurationError as exc:
        _abort(exc.detail)

    from obp.logs import configure_logging

    configure_logging(level=settings.log_level, fmt=settings.log_format)
    # Migrate once here, before worker processes start, so they never race on the schema.
    try:
        asyncio.run(_migrate(settings))
        asyncio.run(preflight(settings))
    except (Unavailable, ConfigurationError) as exc:
        _abort(exc.detail)
    settings = settings.model_copy(update={"migrate_on_start": False})
    os.environ.update(settings.as_environment())

    if "api" in settings.roles:
        _serve_http(settings)
    else:
        asyncio.run(_serve_background(settings))


def _serve_http(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    url = f"http://{_url_host(settings.host)}:{settings.port}"
    typer.echo(f"OBP is listening on {url} (API docs at {url}/docs)", err=True)
    typer.echo(f"Log in as {settings.admin_login!r}: obp login --url {url}", err=True)
    Granian(
        target="obp.http.app:app_factory",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_access=False,
    ).serve()


async def _serve_background(settings: Settings) -> None:
    """Worker/scheduler roles without HTTP: run until SIGINT or SIGTERM."""
    from obp.bootstrap import start_platform

    platform = await start_platform(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    typer.echo(f"OBP background roles running: {', '.join(settings.roles)}", err=True)
    try:
        await stop.wait()
    finally:
        await platform.stop()


async def _migrate(settings: Settings) -> None:
    from obp.adapters import migrate
    from obp.adapters.db import UNAVAILABLE_ERRORS
    from obp.adapters.registry import DATABASES

    database = DATABASES.create(settings.database_url)
    try:
        await migrate.upgrade(database)
    except UNAVAILABLE_ERRORS as exc:
        raise database.unavailable(exc) from exc
    finally:
        await database.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _abort(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
