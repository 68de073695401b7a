"""Schema migrations: Alembic, one history for SQLite and PostgreSQL, run at startup."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from obp.adapters.db import Database

# Any fixed number: every replica takes this PostgreSQL advisory lock so only one migrates.
_MIGRATION_LOCK_KEY = 0x0B9_0001


def migrations_dir() -> Path:
    """Where the Alembic scripts are: packaged in a wheel, or the repository's `migrations/`."""
    package_root = Path(__file__).resolve().parents[1]
    for candidate in (package_root / "_migrations", package_root.parents[1] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the Alembic migrations directory is missing from this install")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config pointing at the migrations, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; concurrent replicas wait for the first one."""
    async with database.engine.connect() as conn:
        if database.backend == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            await conn.commit()
        try:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
            await conn.commit()
        except BaseException:
            # A failed migration aborts the transaction; end it so the unlock can run.
            await conn.rollback()
            raise
        finally:
            if database.backend == "postgresql":
                await conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY}
                )
                await conn.commit()
