"""Which real backend servers the tests may use, from `OBP_TEST_*_URL` variables.

A test that needs a server that is not configured is skipped with the variable to set; under
CI=true it fails instead, because CI must exercise every backend for real.
"""

from __future__ import annotations

import os

import pytest

SERVER_VARIABLES = {
    "postgres": "OBP_TEST_POSTGRES_URL",
    "redis": "OBP_TEST_REDIS_URL",
    "amqp": "OBP_TEST_AMQP_URL",
    "s3": "OBP_TEST_S3_URL",
}


def server_url(kind: str) -> str:
    """The configured URL of a real server of `kind`, or skip (fail under CI) saying what to set."""
    variable = SERVER_VARIABLES[kind]
    url = os.environ.get(variable, "").strip()
    if url:
        return url
    reason = f"{kind} tests need a real server: set {variable}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: no backend test may be skipped)")
    pytest.skip(reason)
