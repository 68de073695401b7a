"""Settings come from arguments, OBP_* variables and obp.toml, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from obp.bootstrap import check_settings
from obp.kernel.errors import ConfigurationError
from obp.settings import Settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("OBP_DATABASE_URL", "OBP_CACHE_URL", "OBP_BUS_URL", "OBP_PORT", "OBP_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_backends_on_loopback() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///obp-data/obp.db"
    assert settings.cache_url == "memory://"
    assert settings.bus_url == "memory://"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_environment_overrides_obp_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "obp.toml").write_text('port = 9000\ncache_url = "redis://cache:6379/0"\n')
    assert Settings().port == 9000
    assert Settings().cache_url == "redis://cache:6379/0"
    monkeypatch.setenv("OBP_PORT", "9100")
    assert Settings().port == 9100


def test_database_defaults_into_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBP_DATA_DIR", "/var/lib/obp")
    assert Settings().database_url == "sqlite+aiosqlite:////var/lib/obp/obp.db"


def test_rejects_invalid_values_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBP_PORT", "eighty")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_rejects_unknown_keys_in_obp_toml(tmp_path: Path) -> None:
    (tmp_path / "obp.toml").write_text("prot = 9000\n")
    with pytest.raises(ValidationError, match="prot"):
        Settings()


@pytest.mark.parametrize(
    ("field", "url", "accepted"),
    [
        ("database_url", "mysql://x/y", "postgresql+asyncpg://, sqlite+aiosqlite://"),
        ("cache_url", "memcached://x", "memory://, redis://, rediss://"),
        ("bus_url", "kafka://x", "amqp://, amqps://, memory://"),
    ],
)
def test_unknown_scheme_is_a_startup_error_naming_accepted_schemes(
    field: str, url: str, accepted: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        check_settings(Settings.model_validate({field: url}))
    assert f"OBP_{field.upper()}" in error.value.detail
    assert accepted in error.value.detail


def test_several_workers_need_shared_backends() -> None:
    with pytest.raises(ConfigurationError) as error:
        check_settings(Settings(workers=2))
    assert "OBP_CACHE_URL" in error.value.detail
    assert "OBP_BUS_URL" in error.value.detail
    shared = Settings(
        workers=2,
        database_url="postgresql+asyncpg://db/obp",
        cache_url="redis://cache",
        bus_url="amqp://mq",
    )
    check_settings(shared)


def test_round_trips_through_the_environment_given_to_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Settings(port=9001, roles=["api", "worker"], bus_url="amqp://mq")
    for key, value in original.as_environment().items():
        monkeypatch.setenv(key, value)
    assert Settings() == original


def test_roles_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBP_ROLES", "api, worker")
    assert Settings().roles == ["api", "worker"]
    monkeypatch.setenv("OBP_ROLES", "api,cook")
    with pytest.raises(ValidationError, match="roles"):
        Settings()
