"""Key-value storage.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from obp.kernel.tables import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kv_entries",
        sa.Column("namespace", sa.String(63), nullable=False),
        # Code point order on both engines (SQLite compares UTF-8 bytes by default).
        sa.Column(
            "key",
            sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("value", sa.LargeBinary, nullable=True),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("etag", sa.String(34), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key", name="pk_kv_entries"),
    )


def downgrade() -> None:
    op.drop_table("kv_entries")
