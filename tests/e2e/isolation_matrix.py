"""The isolation matrix: every operation of the API, and how each must treat another tenant.

Tenant operations carry a valid body for the target (so what answers is the authorization, not
validation); platform operations only an administrator may call; public ones answer without a
token, each with the reason why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NS = "/api/v1/namespaces/{ns}"
PASSWORD = "isolation passphrase 0001"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})

Operation = tuple[str, str]  # (METHOD, path template as the OpenAPI document spells it)


@dataclass(frozen=True)
class Raw:
    """A request body of bytes (files, KV values), with the headers that describe it."""

    content: bytes
    headers: dict[str, str]


Body = dict[str, Any] | Raw | None

# Answer without a token, on purpose; the value says why.
PUBLIC: dict[Operation, str] = {
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/readyz"): "readiness probe",
    ("GET", "/metrics"): "Prometheus scrape",
    ("GET", "/docs"): "interactive API docs",
    ("GET", "/api/v1/openapi.json"): "the API description",
    ("POST", f"{NS}/iam/token"): "OAuth2 token endpoint: the credentials are in the body",
    ("POST", f"{NS}/iam/token/revoke"): "RFC 7009 revocation: the token is the credential",
    ("GET", f"{NS}/.well-known/jwks.json"): "public keys, so anyone can verify tokens",
    ("GET", f"{NS}/.well-known/openid-configuration"): "discovery document",
}

# Name no namespace: only platform administrators (global policies) may call them.
PLATFORM: dict[Operation, Body] = {
    ("POST", "/api/v1/namespaces"): {"name": "isolation-intruder"},
    ("GET", "/api/v1/namespaces"): None,
    ("GET", "/api/v1/vault"): None,
    ("POST", "/api/v1/vault/root/rotate"): None,
}


@dataclass(frozen=True)
class Tenant:
    """A namespace and real objects of it, so the matrix aims at things that exist."""

    name: str
    root_policy: str
    policy: str
    role: str
    identity: str
    identity_name: str
    api_key: str
    api_key_secret: str
    secret: str
    file: str
    kv_key: str
    # Text only this tenant's data contains: no answer to an intruder may carry any of it.
    markers: tuple[str, ...]

    def path_values(self) -> dict[str, str]:
        """What each path parameter of the API stands for, in this tenant."""
        return {
            "ns": self.name,
            "name": self.secret,
            "policy_id": self.policy,
            "role_id": self.role,
            "identity_id": self.identity,
            "key_id": self.api_key,
            "file_id": self.file,
            "key": self.kv_key,
        }


# Every operation that names a namespace, with a valid body for it (so what answers is the
# authorization, not validation). A body tries what an intruder would: attach the target's
# root policy, take over its identity, widen its rules.
TENANT: dict[Operation, Callable[[Tenant], Body]] = {
    ("GET", NS): lambda t: None,
    ("PATCH", NS): lambda t: {"full_name": "taken over"},
    ("DELETE", NS): lambda t: None,
    ("GET", f"{NS}/audit"): lambda t: None,
    ("PUT", f"{NS}/secrets/{{name}}"): lambda t: {"value": "overwritten"},
    ("GET", f"{NS}/secrets/{{name}}"): lambda t: None,
    ("DELETE", f"{NS}/secrets/{{name}}"): lambda t: None,
    ("GET", f"{NS}/secrets"): lambda t: None,
    ("POST", f"{NS}/files"): lambda t: Raw(b"planted", {"X-OBP-File-Name": "planted.txt"}),
    ("GET", f"{NS}/files"): lambda t: None,
    ("GET", f"{NS}/files/{{file_id}}"): lambda t: None,
    ("HEAD", f"{NS}/files/{{file_id}}"): lambda t: None,
    ("GET", f"{NS}/files/{{file_id}}/stat"): lambda t: None,
    ("DELETE", f"{NS}/files/{{file_id}}"): lambda t: None,
    ("PUT", f"{NS}/kv/{{key}}"): lambda t: Raw(b"overwritten", {"Content-Type": "text/plain"}),
    ("GET", f"{NS}/kv/{{key}}"): lambda t: None,
    ("HEAD", f"{NS}/kv/{{key}}"): lambda t: None,
    ("DELETE", f"{NS}/kv/{{key}}"): lambda t: None,
    ("GET", f"{NS}/kv"): lambda t: None,
    ("POST", f"{NS}/vault/data-key/rotate"): lambda t: None,
    ("GET", f"{NS}/vault/keys"): lambda t: None,
    ("POST", f"{NS}/vault/keys/rotate"): lambda t: None,
    ("POST", f"{NS}/iam/policies"): lambda t: {
        "name": "intruder",
        "resources": ["*"],
        "actions": ["*"],
    },
    ("GET", f"{NS}/iam/policies"): lambda t: None,
    ("GET", f"{NS}/iam/policies/{{policy_id}}"): lambda t: None,
    ("PATCH", f"{NS}/iam/policies/{{policy_id}}"): lambda t: {"resources": ["*"], "actions": ["*"]},
    ("DELETE", f"{NS}/iam/policies/{{policy_id}}"): lambda t: None,
    ("POST", f"{NS}/iam/roles"): lambda t: {"name": "intruder", "policies": [t.root_policy]},
    ("GET", f"{NS}/iam/roles"): lambda t: None,
    ("GET", f"{NS}/iam/roles/{{role_id}}"): lambda t: None,
    ("PATCH", f"{NS}/iam/roles/{{role_id}}"): lambda t: {"policies": [t.root_policy]},
    ("DELETE", f"{NS}/iam/roles/{{role_id}}"): lambda t: None,
    ("POST", f"{NS}/iam/authz/check"): lambda t: {
        "checks": [{"action": "secret.get", "resource": f"secret:{t.secret}"}],
        "identity": t.identity,
    },
    ("POST", f"{NS}/iam/identities"): lambda t: {
        "name": "intruder",
        "policies": [t.root_policy],
    },
    ("GET", f"{NS}/iam/identities"): lambda t: None,
    ("GET", f"{NS}/iam/identities/{{identity_id}}"): lambda t: None,
    ("PATCH", f"{NS}/iam/identities/{{identity_id}}"): lambda t: {"policies": [t.root_policy]},
    ("DELETE", f"{NS}/iam/identities/{{identity_id}}"): lambda t: None,
    ("POST", f"{NS}/iam/identities/{{identity_id}}/block"): lambda t: None,
    ("POST", f"{NS}/iam/identities/{{identity_id}}/unblock"): lambda t: None,
    ("PUT", f"{NS}/iam/identities/{{identity_id}}/password"): lambda t: {
        "password": "a password the intruder knows"
    },
    ("POST", f"{NS}/iam/identities/{{identity_id}}/api-keys"): lambda t: {"description": "mine"},
    ("GET", f"{NS}/iam/identities/{{identity_id}}/api-keys"): lambda t: None,
    ("DELETE", f"{NS}/iam/identities/{{identity_id}}/api-keys/{{key_id}}"): lambda t: None,
    ("GET", f"{NS}/iam/settings"): lambda t: None,
    ("PUT", f"{NS}/iam/settings"): lambda t: {"min_password_length": 64},
}

# Destructive operations last, so one that wrongly succeeds cannot hide what the others do.
_ORDER = {"GET": 0, "HEAD": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}


def order(method: str) -> int:
    """Where operations of `method` come in a run of the matrix."""
    return _ORDER[method]
