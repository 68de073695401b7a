"""File tables: one row per file; its bytes live in the blob store."""

from __future__ import annotations

import sqlalchemy as sa

from obp.kernel.tables import UtcDateTime, metadata

# The name orders listings by code point on both engines (SQLite compares TEXT as bytes).
NAME_TYPE = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")

files = sa.Table(
    "files",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", NAME_TYPE, nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("sha256", sa.String(64), nullable=False, server_default=""),
    sa.Column("metadata", sa.JSON, nullable=False),
    # `pending` while the bytes stream in: invisible, and swept with its blob once its lease
    # lapses (the uploader died); `ready` once the blob is durable.
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Index("ix_files_namespace_name_id", "namespace", "name", "id"),
    sa.Index("ix_files_state_lease_until", "state", "lease_until"),
)
