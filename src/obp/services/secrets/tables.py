"""Secret tables: every version of every secret, values sealed by the vault."""

from __future__ import annotations

import sqlalchemy as sa

from obp.kernel.tables import UtcDateTime, metadata

secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("value_sealed", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
)
