"""Vault tables: wrapped data keys and sealed key pairs, per namespace."""

from __future__ import annotations

import sqlalchemy as sa

from obp.kernel.tables import UtcDateTime, metadata

vault_data_keys = sa.Table(
    "vault_data_keys",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("key_id", sa.String(36), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
    sa.Column("root_version", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # At most one active data key per namespace, even with racing creators.
    sa.Index(
        "uq_vault_data_keys_active",
        "namespace",
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    ),
    sa.Index("ix_vault_data_keys_root_version", "root_version"),
)

vault_key_pairs = sa.Table(
    "vault_key_pairs",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("public_jwk", sa.JSON, nullable=False),
    sa.Column("private_sealed", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("retired_at", UtcDateTime, nullable=True),
    sa.Index(
        "uq_vault_key_pairs_active",
        "namespace",
        "algorithm",
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    ),
)
