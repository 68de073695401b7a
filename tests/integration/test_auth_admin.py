"""Authentication administration on every database engine: setting passwords, the namespace's
password rules, API keys, authorization of these actions, and the JWK set and OpenID discovery."""

from __future__ import annotations

from typing import cast

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, KeySetSerialization

from obp.kernel.errors import InvalidInput, NotFound, Unauthorized
from tests.integration.auth_world import (
    NS,
    PASSWORD,
    World,
    issuer_for,
    world_fixture,  # noqa: F401  (the `world` fixture)
)
from tests.principals import OPERATOR

# --- passwords and rules ---------------------------------------------------------------------


async def test_set_password_enforces_the_minimum_and_signs_out_every_session(
    world: World,
) -> None:
    alice = await world.identity()
    pair = await world.login()
    with pytest.raises(InvalidInput) as caught:
        await world.auth.set_password(
            principal=OPERATOR, namespace=NS, identity_id=alice.id, password="short"
        )
    assert caught.value.errors[0].loc == ("password",)
    assert "at least 12" in caught.value.errors[0].msg
    assert (await world.refresh(pair.refresh_token)).refresh_token  # nothing changed
    later = await world.login()
    await world.auth.set_password(
        principal=OPERATOR, namespace=NS, identity_id=alice.id, password="a brand new password"
    )
    with pytest.raises(Unauthorized):
        await world.refresh(later.refresh_token)
    with pytest.raises(Unauthorized):
        await world.login()
    await world.login(password="a brand new password")


async def test_the_namespace_minimum_length_applies_to_new_passwords(world: World) -> None:
    alice = await world.identity()
    rules = await world.auth.get_password_rules(principal=OPERATOR, namespace=NS)
    assert (rules.min_length, rules.max_length) == (12, 1024)
    await world.auth.put_password_rules(principal=OPERATOR, namespace=NS, min_length=30)
    await world.auth.put_password_rules(principal=OPERATOR, namespace=NS, min_length=40)
    assert (await world.auth.get_password_rules(principal=OPERATOR, namespace=NS)).min_length == 40
    with pytest.raises(InvalidInput) as caught:
        await world.auth.set_password(
            principal=OPERATOR, namespace=NS, identity_id=alice.id, password=PASSWORD
        )
    assert "at least 40" in caught.value.errors[0].msg
    assert (
        await world.auth.get_password_rules(principal=OPERATOR, namespace="global")
    ).min_length == 12


@pytest.mark.parametrize("value", [0, 7, 1025])
async def test_a_minimum_length_out_of_range_is_refused(world: World, value: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        await world.auth.put_password_rules(principal=OPERATOR, namespace=NS, min_length=value)
    assert caught.value.errors[0].loc == ("min_password_length",)


async def test_rules_of_a_namespace_that_does_not_exist_are_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.auth.put_password_rules(principal=OPERATOR, namespace="nowhere", min_length=20)


async def test_set_password_of_an_unknown_identity_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.auth.set_password(
            principal=OPERATOR, namespace=NS, identity_id="nobody", password=PASSWORD
        )


# --- API keys --------------------------------------------------------------------------------


async def test_api_keys_belong_to_existing_identities(world: World) -> None:
    with pytest.raises(NotFound):
        await world.auth.create_api_key(principal=OPERATOR, namespace=NS, identity_id="nobody")
    with pytest.raises(NotFound):
        await world.auth.list_api_keys(principal=OPERATOR, namespace=NS, identity_id="nobody")


# --- authorization ---------------------------------------------------------------------------


async def test_administrative_actions_are_authorized_on_their_resources(world: World) -> None:
    alice = await world.identity()
    world.access.checked.clear()
    await world.auth.set_password(
        principal=OPERATOR, namespace=NS, identity_id=alice.id, password=PASSWORD
    )
    key = await world.auth.create_api_key(principal=OPERATOR, namespace=NS, identity_id=alice.id)
    await world.auth.list_api_keys(principal=OPERATOR, namespace=NS, identity_id=alice.id)
    await world.auth.revoke_api_key(
        principal=OPERATOR, namespace=NS, identity_id=alice.id, key_id=key.key_id
    )
    await world.auth.get_password_rules(principal=OPERATOR, namespace=NS)
    await world.auth.put_password_rules(principal=OPERATOR, namespace=NS, min_length=12)
    resource = f"iam:identity/{alice.id}"
    assert world.access.checked == [
        (OPERATOR.identity, NS, "iam.identity.password.set", resource),
        (OPERATOR.identity, NS, "iam.apikey.create", resource),
        (OPERATOR.identity, NS, "iam.apikey.list", resource),
        (OPERATOR.identity, NS, "iam.apikey.revoke", resource),
        (OPERATOR.identity, NS, "iam.settings.get", "iam:settings"),
        (OPERATOR.identity, NS, "iam.settings.set", "iam:settings"),
    ]


# --- discovery -------------------------------------------------------------------------------


async def test_the_jwks_lists_the_key_that_signs_access_tokens(world: World) -> None:
    await world.identity()
    pair = await world.login()
    key_set = await world.auth.jwks(namespace=NS)
    keys = KeySet.import_key_set(cast(KeySetSerialization, key_set))
    header = jwt.decode(pair.access_token, keys).header
    assert header["kid"] in [key["kid"] for key in key_set["keys"]]
    assert all("d" not in key for key in key_set["keys"])  # public halves only
    assert (await world.auth.jwks(namespace="beta")) == {"keys": []}


async def test_the_openid_configuration_names_the_issuer_and_endpoints(world: World) -> None:
    config = world.auth.openid_configuration(namespace=NS)
    issuer = issuer_for(NS)
    assert config["issuer"] == issuer
    assert config["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert config["token_endpoint"] == f"{issuer}/iam/token"
    assert config["revocation_endpoint"] == f"{issuer}/iam/token/revoke"
    assert config["id_token_signing_alg_values_supported"] == ["ES256"]
    assert set(config["grant_types_supported"]) == {
        "password",
        "refresh_token",
        "client_credentials",
    }
    moved = world.auth.openid_configuration(namespace=NS, base_url="https://id.example.org/")
    assert moved["token_endpoint"] == f"https://id.example.org/api/v1/namespaces/{NS}/iam/token"
