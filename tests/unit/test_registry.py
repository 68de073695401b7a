"""Backends are chosen by URL scheme and their drivers imported only when used."""

from __future__ import annotations

import subprocess
import sys

import pytest

from obp.adapters.registry import BUSES
from obp.kernel.errors import ConfigurationError


def test_memory_defaults_import_no_network_driver() -> None:
    script = (
        "import sys\n"
        "from obp.adapters.registry import BUSES, CACHES\n"
        "BUSES.create('memory://'); CACHES.create('memory://')\n"
        "loaded = [m for m in ('aio_pika', 'redis', 'asyncpg') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_scheme_lookup_is_case_insensitive() -> None:
    assert BUSES.factory("MEMORY://") is BUSES.factory("memory://")


def test_url_without_scheme_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="accepted: amqp://, amqps://, memory://"):
        BUSES.factory("localhost:5672")
