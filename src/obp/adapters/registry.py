"""Backends chosen by URL scheme; drivers are imported only when their scheme is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from obp.kernel.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Registry:
    """The adapters of one port, by URL scheme, each as `module:factory` imported lazily."""

    port: str
    setting: str
    factories: Mapping[str, str]

    @property
    def schemes(self) -> list[str]:
        """The URL schemes this port accepts."""
        return sorted(self.factories)

    def factory(self, url: str) -> Callable[..., Any]:
        """The factory for `url`'s scheme, or `ConfigurationError` naming the accepted ones."""
        scheme = urlsplit(url).scheme.lower()
        target = self.factories.get(scheme)
        if target is None:
            accepted = ", ".join(f"{s}://" for s in self.schemes)
            given = f"{scheme}://" if scheme else "a URL without a scheme"
            raise ConfigurationError(
                f"{self.setting}: unknown {self.port} scheme {given}; accepted: {accepted}"
            )
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(
                f"{self.setting}: the driver for {scheme}:// is not installed ({exc.name})"
            ) from exc
        factory: Callable[..., Any] = getattr(module, attribute)
        return factory

    def create(self, url: str, **options: Any) -> Any:
        """Build the adapter for `url`."""
        return self.factory(url)(url, **options)


DATABASES = Registry(
    port="database",
    setting="OBP_DATABASE_URL",
    factories={
        "sqlite+aiosqlite": "obp.adapters.db:create_database",
        "postgresql+asyncpg": "obp.adapters.db:create_database",
    },
)

CACHES = Registry(
    port="cache",
    setting="OBP_CACHE_URL",
    factories={
        "memory": "obp.adapters.cache_memory:create",
        "redis": "obp.adapters.cache_redis:create",
        "rediss": "obp.adapters.cache_redis:create",
    },
)

BUSES = Registry(
    port="bus",
    setting="OBP_BUS_URL",
    factories={
        "memory": "obp.adapters.bus_memory:create",
        "amqp": "obp.adapters.bus_amqp:create",
        "amqps": "obp.adapters.bus_amqp:create",
    },
)

KEYSTORES = Registry(
    port="key store",
    setting="OBP_KEYSTORE_URL",
    factories={
        "file": "obp.adapters.keystore_file:create",
        "pkcs11": "obp.adapters.keystore_pkcs11:create",
    },
)

BLOBS = Registry(
    port="blob store",
    setting="OBP_BLOB_URL",
    factories={
        "file": "obp.adapters.blobs_fs:create",
        "s3": "obp.adapters.blobs_s3:create",
    },
)

# Backends that live inside one process: several workers or replicas need shared ones.
IN_PROCESS_SCHEMES = frozenset({"memory"})
