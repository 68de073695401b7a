"""The audit trail: who was refused or failed what, per namespace."""

from __future__ import annotations

import sqlalchemy as sa

from obp.kernel.tables import UtcDateTime, metadata

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("resource", sa.String(512), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)
