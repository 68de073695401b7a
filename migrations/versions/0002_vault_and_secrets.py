"""Vault data keys and key pairs; tenant secrets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from obp.kernel.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_data_keys",
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("key_id", sa.String(36), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("root_version", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key_id", name="pk_vault_data_keys"),
    )
    op.create_index(
        "uq_vault_data_keys_active",
        "vault_data_keys",
        ["namespace"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_index("ix_vault_data_keys_root_version", "vault_data_keys", ["root_version"])
    op.create_table(
        "vault_key_pairs",
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("public_jwk", sa.JSON, nullable=False),
        sa.Column("private_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("retired_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("namespace", "kid", name="pk_vault_key_pairs"),
    )
    op.create_index(
        "uq_vault_key_pairs_active",
        "vault_key_pairs",
        ["namespace", "algorithm"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "secrets",
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("value_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "name", "version", name="pk_secrets"),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    op.drop_index("uq_vault_key_pairs_active", table_name="vault_key_pairs")
    op.drop_table("vault_key_pairs")
    op.drop_index("ix_vault_data_keys_root_version", table_name="vault_data_keys")
    op.drop_index("uq_vault_data_keys_active", table_name="vault_data_keys")
    op.drop_table("vault_data_keys")
