"""IAM tables. Attachments name the attached object's namespace, since it may be global."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from obp.kernel.tables import UtcDateTime, metadata
from obp.services.iam.model import Identity, Policy, Ref, Role


def _named(name: str, *columns: sa.Column[object]) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        *columns,
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("namespace", "name"),
    )


def _attachment(name: str, owner: str, target: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column(f"{owner}_id", sa.String(36), primary_key=True),
        sa.Column(f"{target}_namespace", sa.String(63), primary_key=True),
        sa.Column(f"{target}_id", sa.String(36), primary_key=True),
        sa.Index(f"ix_{name}_{target}", f"{target}_namespace", f"{target}_id"),
    )


iam_policies = _named(
    "iam_policies",
    sa.Column("resources", sa.JSON, nullable=False),
    sa.Column("actions", sa.JSON, nullable=False),
    sa.Column("namespace_independent", sa.Boolean, nullable=False),
    sa.Column("builtin", sa.Boolean, nullable=False),
)
iam_roles = _named("iam_roles")
iam_identities = _named(
    "iam_identities",
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),
)
iam_role_policies = _attachment("iam_role_policies", "role", "policy")
iam_identity_policies = _attachment("iam_identity_policies", "identity", "policy")
iam_identity_roles = _attachment("iam_identity_roles", "identity", "role")

iam_api_keys = sa.Table(
    "iam_api_keys",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("identity_id", sa.String(36), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Index("ix_iam_api_keys_identity", "namespace", "identity_id"),
)

iam_refresh_tokens = sa.Table(
    "iam_refresh_tokens",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("family_id", sa.String(36), nullable=False),
    sa.Column("identity_id", sa.String(36), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("used_at", UtcDateTime, nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Index("ix_iam_refresh_tokens_family", "namespace", "family_id"),
)

iam_settings = sa.Table(
    "iam_settings",
    metadata,
    sa.Column("namespace", sa.String(63), primary_key=True),
    sa.Column("min_password_length", sa.Integer, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)


def policy_row(policy: Policy) -> dict[str, Any]:
    """The row of a policy."""
    return {
        "namespace": policy.namespace,
        "id": policy.id,
        "name": policy.name,
        "description": policy.description,
        "resources": list(policy.resources),
        "actions": list(policy.actions),
        "namespace_independent": policy.namespace_independent,
        "builtin": policy.builtin,
        "created_at": policy.created_at,
        "updated_at": policy.updated_at,
    }


def role_row(role: Role) -> dict[str, Any]:
    """The row of a role (its policies live in iam_role_policies)."""
    return {
        "namespace": role.namespace,
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "created_at": role.created_at,
        "updated_at": role.updated_at,
    }


def identity_row(identity: Identity) -> dict[str, Any]:
    """The row of an identity (attachments live in their own tables)."""
    return {
        "namespace": identity.namespace,
        "id": identity.id,
        "name": identity.name,
        "description": "",
        "active": identity.active,
        "metadata": identity.metadata,
        "password_hash": identity.password_hash,
        "created_at": identity.created_at,
        "updated_at": identity.updated_at,
    }


def policy_from_row(row: Any) -> Policy:
    """A policy from its row."""
    return Policy(
        namespace=row.namespace,
        id=row.id,
        name=row.name,
        description=row.description,
        resources=tuple(row.resources),
        actions=tuple(row.actions),
        namespace_independent=bool(row.namespace_independent),
        builtin=bool(row.builtin),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def role_from_row(row: Any, policies: tuple[Ref, ...]) -> Role:
    """A role from its row and attached policies."""
    return Role(
        namespace=row.namespace,
        id=row.id,
        name=row.name,
        description=row.description,
        policies=policies,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def identity_from_row(row: Any, policies: tuple[Ref, ...], roles: tuple[Ref, ...]) -> Identity:
    """An identity from its row and attachments."""
    return Identity(
        namespace=row.namespace,
        id=row.id,
        name=row.name,
        active=bool(row.active),
        metadata=dict(row.metadata),
        policies=policies,
        roles=roles,
        created_at=row.created_at,
        updated_at=row.updated_at,
        password_hash=row.password_hash,
    )
