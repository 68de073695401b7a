"""IAM: policies, roles, identities, their attachments, API keys, refresh tokens, settings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from obp.kernel.tables import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _named(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        *columns,
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "id", name=f"pk_{name}"),
        sa.UniqueConstraint("namespace", "name", name=f"uq_{name}_namespace_name"),
    )


def _attachment(name: str, owner: str, target: str) -> None:
    op.create_table(
        name,
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column(f"{owner}_id", sa.String(36), nullable=False),
        sa.Column(f"{target}_namespace", sa.String(63), nullable=False),
        sa.Column(f"{target}_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint(
            "namespace", f"{owner}_id", f"{target}_namespace", f"{target}_id", name=f"pk_{name}"
        ),
    )
    op.create_index(f"ix_{name}_{target}", name, [f"{target}_namespace", f"{target}_id"])


def upgrade() -> None:
    _named(
        "iam_policies",
        sa.Column("resources", sa.JSON, nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("namespace_independent", sa.Boolean, nullable=False),
        sa.Column("builtin", sa.Boolean, nullable=False),
    )
    _named("iam_roles")
    _named(
        "iam_identities",
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
    )
    _attachment("iam_role_policies", "role", "policy")
    _attachment("iam_identity_policies", "identity", "policy")
    _attachment("iam_identity_roles", "identity", "role")
    op.create_table(
        "iam_api_keys",
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("namespace", "id", name="pk_iam_api_keys"),
    )
    op.create_index("ix_iam_api_keys_identity", "iam_api_keys", ["namespace", "identity_id"])
    op.create_table(
        "iam_refresh_tokens",
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("family_id", sa.String(36), nullable=False),
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("used_at", UtcDateTime, nullable=True),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("namespace", "digest", name="pk_iam_refresh_tokens"),
    )
    op.create_index(
        "ix_iam_refresh_tokens_family", "iam_refresh_tokens", ["namespace", "family_id"]
    )
    op.create_table(
        "iam_settings",
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("min_password_length", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("namespace", name="pk_iam_settings"),
    )


def downgrade() -> None:
    for table in (
        "iam_settings",
        "iam_refresh_tokens",
        "iam_api_keys",
        "iam_identity_roles",
        "iam_identity_policies",
        "iam_role_policies",
        "iam_identities",
        "iam_roles",
        "iam_policies",
    ):
        op.drop_table(table)
