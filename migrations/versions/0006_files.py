"""Files: one row per file, bytes in the blob store.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from obp.kernel.tables import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "name",
            sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "id", name="pk_files"),
    )
    op.create_index("ix_files_namespace_name_id", "files", ["namespace", "name", "id"])
    op.create_index("ix_files_state_lease_until", "files", ["state", "lease_until"])


def downgrade() -> None:
    op.drop_table("files")
