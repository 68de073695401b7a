"""Namespace tables."""

from __future__ import annotations

import sqlalchemy as sa

from obp.kernel.tables import UtcDateTime, metadata

namespaces = sa.Table(
    "namespaces",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("full_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
