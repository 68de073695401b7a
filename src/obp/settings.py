"""Settings: `OBP_*` environment variables, then `obp.toml`, then the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Role = Literal["api", "worker", "scheduler"]
ALL_ROLES: tuple[Role, ...] = ("api", "worker", "scheduler")


class Settings(BaseSettings):
    """Everything an OBP process needs to know; every field is `OBP_<NAME>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="OBP_", toml_file="obp.toml", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(
        default=Path("obp-data"), description="Where embedded backends keep data"
    )
    database_url: str = Field(
        default="",
        description="sqlite+aiosqlite:///path or postgresql+asyncpg://...; "
        "default: SQLite in data_dir",
    )
    cache_url: str = Field(default="memory://", description="memory:// or redis://...")
    bus_url: str = Field(default="memory://", description="memory:// or amqp://...")
    blob_url: str | None = Field(
        default=None,
        description="file:///path or s3://bucket?endpoint=...; default: files in data_dir/blobs",
        # An S3 URL may carry its secret key: never in a repr or a log of the settings.
        repr=False,
    )
    keystore_url: str = Field(
        default="file://",
        description="file:// (master.key in data_dir) or pkcs11:///path/lib.so?token=LABEL",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=256)
    # NoDecode: OBP_ROLES=api,worker reads as a comma-separated list, not as JSON.
    roles: Annotated[list[Role], NoDecode] = Field(default_factory=lambda: list(ALL_ROLES))
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    kv_max_value_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1, description="Largest key-value value; larger ones get 413"
    )
    kv_cache_ttl: float = Field(
        default=300.0, gt=0, description="Seconds a key-value entry stays cached at most"
    )
    max_file_bytes: int = Field(
        default=64 * 1024**3, ge=1, description="Largest file an upload may store (bytes)"
    )
    files_upload_lease_seconds: float = Field(
        default=60.0, ge=1, description="An upload not heard of for this long is swept"
    )
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    migrate_on_start: bool = True
    public_url: str = Field(
        default="", description="How clients reach this API (token issuer); default from host/port"
    )
    access_token_lifetime_seconds: int = Field(default=600, ge=60, le=3600)
    refresh_token_lifetime_days: int = Field(default=30, ge=1, le=365)
    admin_login: str = "admin"
    admin_password: SecretStr | None = Field(
        default=None, description="Password of the first global admin; generated if unset"
    )

    @field_validator("roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'obp.db'}"
        if not self.public_url:
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.public_url = f"http://{host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments win, then the environment, then `obp.toml`."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def as_environment(self) -> dict[str, str]:
        """These settings as `OBP_*` variables, so worker processes rebuild the same settings."""
        env: dict[str, str] = {}
        dumped = self.model_dump(mode="json")
        if self.admin_password is not None:
            dumped["admin_password"] = self.admin_password.get_secret_value()
        for name, value in dumped.items():
            key = f"OBP_{name.upper()}"
            if isinstance(value, list):
                env[key] = ",".join(str(item) for item in value)
            elif value is None:
                continue
            elif isinstance(value, bool):
                env[key] = "true" if value else "false"
            else:
                env[key] = str(value)
        return env
