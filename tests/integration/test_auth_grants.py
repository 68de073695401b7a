"""Authentication grants on every database engine: the password grant and its throttling,
refresh-token rotation and reuse detection, client credentials, and revocation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from obp.adapters.cache_memory import MemoryCache
from obp.adapters.db import Database
from obp.kernel.errors import Unauthorized
from obp.services.iam.auth import CLIENT_FAILED, LOGIN_FAILED, AuthService, Throttled, TokenPair
from obp.services.iam.throttle import LoginThrottle
from obp.services.iam.tokens import TokenIssuer
from tests.integration.auth_world import (
    NS,
    PASSWORD,
    SETTINGS,
    World,
    hasher,
    world_fixture,  # noqa: F401  (the `world` fixture)
)
from tests.principals import OPERATOR, Trail

# --- password grant --------------------------------------------------------------------------


async def test_a_password_grant_gives_a_verifiable_access_token_and_a_refresh_token(
    world: World,
) -> None:
    alice = await world.identity()
    pair = await world.login()
    assert (pair.token_type, pair.expires_in) == ("Bearer", SETTINGS.lifetime_seconds)
    assert pair.refresh_token is not None
    assert pair.refresh_token.startswith("obprt_")
    claims = await world.verifier.verify(pair.access_token)
    assert (claims.namespace, claims.identity_id, claims.name) == (NS, alice.id, "alice")


async def test_a_global_identity_logs_in_to_the_global_namespace(world: World) -> None:
    admin = await world.identity("root-admin", namespace="global")
    pair = await world.login("root-admin", namespace="global")
    claims = await world.verifier.verify(pair.access_token)
    assert (claims.namespace, claims.identity_id) == ("global", admin.id)


async def test_wrong_password_unknown_login_and_blocked_identity_fail_the_same_way(
    world: World,
) -> None:
    await world.identity()
    blocked = await world.identity("bob")
    await world.block(blocked)
    await world.identity("carol", password=None)
    attempts = [
        ("alice", "wrong password 123"),
        ("mallory", PASSWORD),
        ("bob", PASSWORD),
        ("carol", PASSWORD),
        ("alice", "x" * 5000),
    ]
    messages = set()
    for name, password in attempts:
        with pytest.raises(Unauthorized) as caught:
            await world.login(name, password)
        messages.add(caught.value.detail)
    assert messages == {LOGIN_FAILED}


async def test_five_failures_throttle_the_login_with_a_retry_after(world: World) -> None:
    await world.identity()
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await world.login(password="not the password")
    with pytest.raises(Throttled) as caught:
        await world.login()  # even the right password waits
    assert caught.value.retry_after == 30
    world.clock.now += 31
    assert (await world.login()).refresh_token is not None


async def test_unknown_logins_are_throttled_like_real_ones(world: World) -> None:
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await world.login("nobody", "whatever password")
    with pytest.raises(Throttled) as caught:
        await world.login("nobody", "whatever password")
    assert caught.value.retry_after == 30


async def test_a_success_forgets_earlier_failures(world: World) -> None:
    await world.identity()
    for _ in range(4):
        with pytest.raises(Unauthorized):
            await world.login(password="not the password")
    await world.login()
    for _ in range(4):
        with pytest.raises(Unauthorized):
            await world.login(password="not the password")
    await world.login()


async def test_identities_of_a_deleted_namespace_cannot_log_in(world: World) -> None:
    await world.identity()
    await world.namespaces.delete(principal=OPERATOR, name=NS)  # the IAM purge runs later
    with pytest.raises(Unauthorized) as caught:
        await world.login()
    assert caught.value.detail == LOGIN_FAILED


async def test_a_login_of_one_namespace_does_not_work_in_another(world: World) -> None:
    await world.namespaces.create(principal=OPERATOR, name="beta")
    await world.identity()
    with pytest.raises(Unauthorized):
        await world.login(namespace="beta")


async def test_a_hash_with_old_parameters_is_replaced_at_the_next_login(world: World) -> None:
    old_hash = await hasher(time_cost=2).hash(PASSWORD)
    await world.identities.create_identity(principal=OPERATOR, namespace=NS, name="alice")
    alice = await world.identities.identity_by_name(namespace=NS, name="alice")
    assert alice is not None
    await world.identities.set_password_hash(
        namespace=NS, identity_id=alice.id, password_hash=old_hash
    )
    await world.login()
    rehashed = await world.identities.identity_by_name(namespace=NS, name="alice")
    assert rehashed is not None
    assert rehashed.password_hash is not None
    assert rehashed.password_hash != old_hash
    assert ",t=1," in rehashed.password_hash
    await world.login()


# --- refresh grant ---------------------------------------------------------------------------


async def test_a_refresh_token_rotates_on_use(world: World) -> None:
    alice = await world.identity()
    first = await world.login()
    second = await world.refresh(first.refresh_token)
    assert second.refresh_token not in (None, first.refresh_token)
    claims = await world.verifier.verify(second.access_token)
    assert claims.identity_id == alice.id
    third = await world.refresh(second.refresh_token)
    assert third.refresh_token is not None


async def test_reusing_a_refresh_token_revokes_its_whole_family(world: World) -> None:
    await world.identity()
    first = await world.login()
    other_session = await world.login()
    second = await world.refresh(first.refresh_token)
    with pytest.raises(Unauthorized):
        await world.refresh(first.refresh_token)  # the old one again: reuse
    with pytest.raises(Unauthorized):
        await world.refresh(second.refresh_token)  # the newest of the family went too
    assert (await world.refresh(other_session.refresh_token)).refresh_token is not None


async def test_two_concurrent_uses_of_one_refresh_token_succeed_exactly_once(
    world: World,
) -> None:
    await world.identity()
    pair = await world.login()
    results = await asyncio.gather(
        world.refresh(pair.refresh_token),
        world.refresh(pair.refresh_token),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, TokenPair)]
    losses = [r for r in results if isinstance(r, Unauthorized)]
    assert (len(wins), len(losses)) == (1, 1), results
    # Two parties held the token: the family is revoked, the winner's new token included.
    with pytest.raises(Unauthorized):
        await world.refresh(wins[0].refresh_token)


async def test_a_blocked_identity_cannot_refresh(world: World) -> None:
    alice = await world.identity()
    pair = await world.login()
    await world.block(alice)
    with pytest.raises(Unauthorized):
        await world.refresh(pair.refresh_token)


async def test_an_expired_or_foreign_or_malformed_refresh_token_is_refused(
    world: World, database: Database
) -> None:
    await world.namespaces.create(principal=OPERATOR, name="beta")
    await world.identity()
    pair = await world.login()
    with pytest.raises(Unauthorized):
        await world.refresh(pair.refresh_token, namespace="beta")
    with pytest.raises(Unauthorized):
        await world.refresh("obprt_" + "A" * 43)
    with pytest.raises(Unauthorized):
        await world.refresh("not a token")
    expired = AuthService(
        unit_of_work=database.unit_of_work,
        identities=world.identities,
        hasher=hasher(),
        throttle=LoginThrottle(MemoryCache()),
        issuer=TokenIssuer(world.vault, SETTINGS),
        namespaces=world.namespaces,
        access=world.access,
        keys=world.vault,
        token_settings=SETTINGS,
        audit=Trail(),
        clock=lambda: datetime(2999, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(Unauthorized):
        await expired.refresh_grant(namespace=NS, refresh_token=pair.refresh_token or "")
    assert (await world.refresh(pair.refresh_token)).refresh_token is not None


# --- client credentials ----------------------------------------------------------------------


async def test_an_api_key_gets_an_access_token_without_a_refresh_token(world: World) -> None:
    robot = await world.identity("robot", password=None)
    created = await world.auth.create_api_key(
        principal=OPERATOR, namespace=NS, identity_id=robot.id, description="CI"
    )
    pair = await world.auth.client_credentials_grant(
        namespace=NS, client_id=created.key_id, client_secret=created.secret
    )
    assert pair.refresh_token is None
    claims = await world.verifier.verify(pair.access_token)
    assert (claims.identity_id, claims.name) == (robot.id, "robot")
    assert claims.extra["client_id"] == created.key_id
    page = await world.auth.list_api_keys(principal=OPERATOR, namespace=NS, identity_id=robot.id)
    assert [(k.id, k.description) for k in page.items] == [(created.key_id, "CI")]
    assert created.secret not in repr(page.items)


async def test_a_revoked_key_a_wrong_secret_or_another_namespace_is_refused_alike(
    world: World,
) -> None:
    await world.namespaces.create(principal=OPERATOR, name="beta")
    robot = await world.identity("robot", password=None)
    key = await world.auth.create_api_key(principal=OPERATOR, namespace=NS, identity_id=robot.id)
    other = await world.auth.create_api_key(principal=OPERATOR, namespace=NS, identity_id=robot.id)
    forged = key.secret[:-4] + ("AAAA" if not key.secret.endswith("AAAA") else "BBBB")
    attempts = [
        (NS, key.key_id, forged),
        (NS, key.key_id, other.secret),  # another key's secret
        (NS, other.key_id, key.secret),  # ids that do not match
        ("beta", key.key_id, key.secret),
        (NS, key.key_id, "not a key"),
    ]
    for namespace, client_id, secret in attempts:
        with pytest.raises(Unauthorized) as caught:
            await world.auth.client_credentials_grant(
                namespace=namespace, client_id=client_id, client_secret=secret
            )
        assert caught.value.detail == CLIENT_FAILED
    await world.auth.revoke_api_key(
        principal=OPERATOR, namespace=NS, identity_id=robot.id, key_id=key.key_id
    )
    with pytest.raises(Unauthorized):
        await world.auth.client_credentials_grant(
            namespace=NS, client_id=key.key_id, client_secret=key.secret
        )
    page = await world.auth.list_api_keys(principal=OPERATOR, namespace=NS, identity_id=robot.id)
    assert [k.id for k in page.items] == [other.key_id]


async def test_an_api_key_of_a_blocked_identity_is_refused(world: World) -> None:
    robot = await world.identity("robot", password=None)
    key = await world.auth.create_api_key(principal=OPERATOR, namespace=NS, identity_id=robot.id)
    await world.block(robot)
    with pytest.raises(Unauthorized):
        await world.auth.client_credentials_grant(
            namespace=NS, client_id=key.key_id, client_secret=key.secret
        )


async def test_repeated_bad_client_secrets_throttle_the_client(world: World) -> None:
    robot = await world.identity("robot", password=None)
    key = await world.auth.create_api_key(principal=OPERATOR, namespace=NS, identity_id=robot.id)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await world.auth.client_credentials_grant(
                namespace=NS, client_id=key.key_id, client_secret="wrong"
            )
    with pytest.raises(Throttled):
        await world.auth.client_credentials_grant(
            namespace=NS, client_id=key.key_id, client_secret=key.secret
        )


# --- revocation ------------------------------------------------------------------------------


async def test_revoking_a_refresh_token_ends_its_family_and_unknown_tokens_are_ignored(
    world: World,
) -> None:
    await world.identity()
    first = await world.login()
    other_session = await world.login()
    second = await world.refresh(first.refresh_token)
    assert first.refresh_token is not None
    await world.auth.revoke(namespace=NS, token=first.refresh_token)  # an old one of the family
    with pytest.raises(Unauthorized):
        await world.refresh(second.refresh_token)
    for token in ("obprt_" + "A" * 43, "garbage", other_session.access_token):
        await world.auth.revoke(namespace=NS, token=token)
    assert other_session.refresh_token is not None
    await world.auth.revoke(namespace="beta", token=other_session.refresh_token)  # foreign
    assert (await world.refresh(other_session.refresh_token)).refresh_token is not None
