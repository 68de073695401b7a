"""IAM request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from obp.services.iam.model import Identity, Policy, Ref, Role


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefRead(BaseModel):
    """An attached policy or role: where it lives and its id."""

    namespace: str
    id: str

    @classmethod
    def of(cls, ref: Ref) -> RefRead:
        """The public view of a reference."""
        return cls(namespace=ref.namespace, id=ref.id)


class PolicyCreate(_Body):
    """A new policy: `actions` (`service.verb`) on `resources` (`service:path`); `*` wildcards."""

    name: str
    description: str = ""
    resources: list[str] = Field(examples=[["kv:orders/*"]])
    actions: list[str] = Field(examples=[["kv.get", "kv.list"]])
    namespace_independent: bool = Field(
        default=False, description="Only in global: grant in every namespace"
    )


class PolicyUpdate(_Body):
    """Change a policy at runtime; omitted fields keep their values."""

    name: str | None = None
    description: str | None = None
    resources: list[str] | None = None
    actions: list[str] | None = None


class PolicyRead(BaseModel):
    """A policy."""

    id: str
    namespace: str
    name: str
    description: str
    resources: list[str]
    actions: list[str]
    namespace_independent: bool
    builtin: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, policy: Policy) -> PolicyRead:
        """The public view of a policy."""
        return cls(
            id=policy.id,
            namespace=policy.namespace,
            name=policy.name,
            description=policy.description,
            resources=list(policy.resources),
            actions=list(policy.actions),
            namespace_independent=policy.namespace_independent,
            builtin=policy.builtin,
            created_at=policy.created_at,
            updated_at=policy.updated_at,
        )


class RoleCreate(_Body):
    """A new role: policy ids of this namespace or of global."""

    name: str
    description: str = ""
    policies: list[str] = Field(default_factory=list)


class RoleUpdate(_Body):
    """Rename a role or replace its policies."""

    name: str | None = None
    description: str | None = None
    policies: list[str] | None = None


class RoleRead(BaseModel):
    """A role."""

    id: str
    namespace: str
    name: str
    description: str
    policies: list[RefRead]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, role: Role) -> RoleRead:
        """The public view of a role."""
        return cls(
            id=role.id,
            namespace=role.namespace,
            name=role.name,
            description=role.description,
            policies=[RefRead.of(ref) for ref in role.policies],
            created_at=role.created_at,
            updated_at=role.updated_at,
        )


class IdentityCreate(_Body):
    """A new identity; `name` is its login in the namespace."""

    name: str
    active: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)
    policies: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)


class IdentityUpdate(_Body):
    """Change an identity; omitted fields keep their values."""

    name: str | None = None
    active: bool | None = None
    metadata: dict[str, Any] | None = None
    policies: list[str] | None = None
    roles: list[str] | None = None


class IdentityRead(BaseModel):
    """An identity (never its password hash)."""

    id: str
    namespace: str
    name: str
    active: bool
    metadata: dict[str, Any]
    policies: list[RefRead]
    roles: list[RefRead]
    has_password: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, identity: Identity) -> IdentityRead:
        """The public view of an identity."""
        return cls(
            id=identity.id,
            namespace=identity.namespace,
            name=identity.name,
            active=identity.active,
            metadata=identity.metadata,
            policies=[RefRead.of(ref) for ref in identity.policies],
            roles=[RefRead.of(ref) for ref in identity.roles],
            has_password=identity.password_hash is not None,
            created_at=identity.created_at,
            updated_at=identity.updated_at,
        )


class PolicyPage(BaseModel):
    """One page of policies."""

    items: list[PolicyRead]
    next_cursor: str | None


class RolePage(BaseModel):
    """One page of roles."""

    items: list[RoleRead]
    next_cursor: str | None


class IdentityPage(BaseModel):
    """One page of identities."""

    items: list[IdentityRead]
    next_cursor: str | None


class PasswordSet(_Body):
    """A new password; it must satisfy the namespace's password rules."""

    password: str = Field(json_schema_extra={"format": "password", "writeOnly": True})


class PasswordRulesRead(BaseModel):
    """The password rules of a namespace."""

    min_password_length: int
    max_password_length: int


class PasswordRulesUpdate(_Body):
    """Change the password rules; they apply to passwords set from now on."""

    min_password_length: int = Field(examples=[12])


class ApiKeyCreate(_Body):
    """A new API key for the identity."""

    description: str = ""


class ApiKeyRead(BaseModel):
    """An API key (never its secret). Use `id` as the OAuth2 `client_id`."""

    id: str
    identity_id: str
    description: str
    created_at: datetime


class ApiKeyCreated(ApiKeyRead):
    """A new API key with its secret, shown this once: the OAuth2 `client_secret`."""

    secret: str


class ApiKeyPage(BaseModel):
    """One page of API keys."""

    items: list[ApiKeyRead]
    next_cursor: str | None


class TokenRequest(BaseModel):
    """An OAuth2 token request (RFC 6749), as a form or as JSON.

    `password`: username and password. `refresh_token`: refresh_token.
    `client_credentials`: client_id and client_secret (an API key), in the body or as HTTP
    Basic authentication.
    """

    grant_type: str = Field(examples=["password", "refresh_token", "client_credentials"])
    username: str | None = None
    password: str | None = None
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = Field(default=None, description="Accepted and ignored")


class TokenResponse(BaseModel):
    """An OAuth2 token response (RFC 6749 section 5.1)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the RFC 6750 token type)
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_token: str | None = Field(default=None, description="Absent for client_credentials")


class RevocationRequest(BaseModel):
    """An OAuth2 token revocation request (RFC 7009), as a form or as JSON."""

    token: str
    token_type_hint: str | None = Field(default=None, description="Accepted and ignored")


class AuthzQuestion(_Body):
    """One question: may the subject do `action` on `resource` (in `namespace`)?"""

    action: str = Field(max_length=128, examples=["kv.get"])
    resource: str = Field(max_length=512, examples=["kv:orders/42"])
    namespace: str | None = Field(default=None, description="Default: the path's namespace")


class AuthzCheck(_Body):
    """Questions about the caller, or about `identity` (needs `iam.authz.check` on it)."""

    checks: list[AuthzQuestion] = Field(min_length=1, max_length=1000)
    identity: str | None = Field(default=None, description="An identity id of this namespace")


class AuthzDecision(BaseModel):
    """One answer."""

    namespace: str
    action: str
    resource: str
    allowed: bool


class AuthzAnswers(BaseModel):
    """The answers, in the order of the questions."""

    decisions: list[AuthzDecision]
