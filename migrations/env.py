"""Alembic environment: runs on the connection OBP hands over, or on OBP_DATABASE_URL."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context

from obp.bootstrap import all_tables_metadata
from obp.settings import Settings

target_metadata = all_tables_metadata()


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode recreates tables there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    from obp.adapters.db import create_database

    database = create_database(Settings().database_url)
    try:
        async with database.engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await database.close()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(url=Settings().database_url, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_from_settings())
