"""The world the authentication tests run in: an `AuthService` with its identity, namespace and
vault services on a migrated database of each engine, a hand-moved clock, and helpers.

Test modules import the fixture as `world_fixture`; tests ask for `world`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from obp.adapters.cache_memory import MemoryCache
from obp.adapters.db import Database
from obp.adapters.keystore_file import FileKeyStore
from obp.services.iam.auth import AuthService, TokenPair
from obp.services.iam.identities import IdentityService
from obp.services.iam.model import Identity
from obp.services.iam.passwords import PasswordHasher
from obp.services.iam.throttle import LoginThrottle
from obp.services.iam.tokens import TokenIssuer, TokenSettings, TokenVerifier
from obp.services.namespaces import NamespaceService
from obp.services.vault import VaultService
from tests.principals import OPERATOR, AllowAll, Trail

BASE = "https://obp.example.com"
PASSWORD = "correct horse battery staple"
NS = "acme"


def issuer_for(namespace: str) -> str:
    """The issuer URL of a namespace."""
    return f"{BASE}/api/v1/namespaces/{namespace}"


SETTINGS = TokenSettings(issuer_for=issuer_for)


class Clock:
    """Wall-clock seconds the throttle and the cache see; moved by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """One platform's worth of services around an `AuthService`."""

    auth: AuthService
    identities: IdentityService
    namespaces: NamespaceService
    verifier: TokenVerifier
    vault: VaultService
    access: AllowAll
    clock: Clock

    async def identity(
        self, name: str = "alice", *, namespace: str = NS, password: str | None = PASSWORD
    ) -> Identity:
        """A new identity, with a password set through the service when given."""
        identity = await self.identities.create_identity(
            principal=OPERATOR, namespace=namespace, name=name
        )
        if password is not None:
            await self.auth.set_password(
                principal=OPERATOR, namespace=namespace, identity_id=identity.id, password=password
            )
        return identity

    async def login(
        self, name: str = "alice", password: str = PASSWORD, *, namespace: str = NS
    ) -> TokenPair:
        """A password grant."""
        return await self.auth.password_grant(namespace=namespace, username=name, password=password)

    async def refresh(self, token: str | None, *, namespace: str = NS) -> TokenPair:
        """A refresh grant."""
        assert token is not None
        return await self.auth.refresh_grant(namespace=namespace, refresh_token=token)

    async def block(self, identity: Identity) -> None:
        """Block an identity."""
        await self.identities.set_blocked(
            principal=OPERATOR, namespace=identity.namespace, identity_id=identity.id, blocked=True
        )


def hasher(time_cost: int = 1) -> PasswordHasher:
    # Cheap parameters: the tests are about the flows, not about argon2's cost.
    return PasswordHasher(time_cost=time_cost, memory_cost=1024, max_concurrency=4)


@pytest_asyncio.fixture(name="world")
async def world_fixture(database: Database, tmp_path: Path) -> AsyncIterator[World]:
    """Services on a migrated database, a file key store and an in-memory cache."""
    clock = Clock()
    uow = database.unit_of_work
    vault = VaultService(unit_of_work=uow, keystore=FileKeyStore(tmp_path / "master.key"))
    await vault.start()
    access = AllowAll()
    cache = MemoryCache(clock=clock)
    namespaces = NamespaceService(unit_of_work=uow, access=access)
    identities = IdentityService(
        unit_of_work=uow, namespaces=namespaces, access=access, cache=cache
    )
    auth = AuthService(
        unit_of_work=uow,
        identities=identities,
        hasher=hasher(),
        throttle=LoginThrottle(cache, clock=clock),
        issuer=TokenIssuer(vault, SETTINGS),
        namespaces=namespaces,
        access=access,
        keys=vault,
        token_settings=SETTINGS,
        audit=Trail(),
    )
    await namespaces.create(principal=OPERATOR, name=NS)
    try:
        yield World(
            auth=auth,
            identities=identities,
            namespaces=namespaces,
            verifier=TokenVerifier(vault, SETTINGS),
            vault=vault,
            access=access,
            clock=clock,
        )
    finally:
        await vault.close()
