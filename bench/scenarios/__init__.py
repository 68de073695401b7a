"""The benchmark scenarios, by the name `python -m bench NAME` takes."""

from __future__ import annotations

from collections.abc import Callable

from bench.report import Outcome
from bench.scenarios import (
    auth_get,
    authz_decide,
    file_download,
    file_range,
    file_upload,
    kv,
    namespace_create,
    namespace_get,
    namespace_memory,
    password_grant,
    refresh_grant,
    vault_seal,
)

Scenario = Callable[..., Outcome]

SCENARIOS: dict[str, Scenario] = {
    "namespace_get": namespace_get.run,
    "namespace_create": namespace_create.run,
    "namespace_memory": namespace_memory.run,
    "vault_seal": vault_seal.run,
    "authz_decide": authz_decide.run,
    "auth_get": auth_get.run,
    "password_grant": password_grant.run,
    "refresh_grant": refresh_grant.run,
    "kv_get": kv.run_get,
    "kv_put": kv.run_put,
    "file_download": file_download.run,
    "file_upload": file_upload.run,
    "file_range": file_range.run,
}
