"""Key-value tables: one row per key, a tombstone (no value) keeping the version count."""

from __future__ import annotations

import sqlalchemy as sa

from obp.kernel.tables import UtcDateTime, metadata

# Ordered by code point on both engines: PostgreSQL's "C" collation compares UTF-8 bytes, as
# SQLite's default BINARY collation does.
KeyType = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")

kv_entries = sa.Table(
    "kv_entries",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("key", KeyType, primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=True),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("etag", sa.String(34), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
