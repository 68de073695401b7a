"""Secret request and response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from obp.services.secrets.model import MAX_VALUE_BYTES, Secret


class SecretWrite(BaseModel):
    """A new value (and optionally description) for a secret."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(description=f"UTF-8 text, at most {MAX_VALUE_BYTES} bytes")
    description: str | None = Field(
        default=None, description="Free text; omitted keeps the previous version's"
    )


class SecretMetadata(BaseModel):
    """A secret without its value."""

    name: str
    version: int
    description: str
    updated_at: datetime

    @classmethod
    def of(cls, secret: Secret) -> SecretMetadata:
        """The metadata of a secret."""
        return cls(
            name=secret.name,
            version=secret.version,
            description=secret.description,
            updated_at=secret.updated_at,
        )


class SecretRead(SecretMetadata):
    """A secret with its value."""

    value: str

    @classmethod
    def with_value(cls, secret: Secret) -> SecretRead:
        """The secret and its value."""
        assert secret.value is not None
        return cls(**SecretMetadata.of(secret).model_dump(), value=secret.value)


class SecretPage(BaseModel):
    """One page of secret metadata."""

    items: list[SecretMetadata]
    next_cursor: str | None
