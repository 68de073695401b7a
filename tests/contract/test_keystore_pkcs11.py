"""The PKCS#11 key store on SoftHSM2: keys stay in the token, failures seal with a reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from obp.adapters import keystore_pkcs11
from obp.adapters.keystore_pkcs11 import Pkcs11KeyStore
from obp.adapters.registry import KEYSTORES
from obp.kernel.errors import ConfigurationError, Sealed
from tests.softhsm import SoftHsmToken

# Until tests/conftest.py imports it, the session fixture is made available here.
AAD = b"context"


@pytest.fixture
def prefix(softhsm_token: SoftHsmToken) -> Iterator[str]:
    """A label prefix of this test's own, purged afterwards (close stores before that)."""
    label_prefix = f"obp-test-{uuid.uuid4().hex[:12]}-"
    yield label_prefix
    softhsm_token.purge(label_prefix)


def store_on(token: SoftHsmToken, prefix: str, *, pin: str | None = None) -> Pkcs11KeyStore:
    return Pkcs11KeyStore(token.library, token.label, pin or token.pin, label_prefix=prefix)


async def test_a_wrong_pin_is_sealed_without_the_pin(
    softhsm_token: SoftHsmToken, prefix: str
) -> None:
    wrong = "wrong-" + softhsm_token.pin

    with pytest.raises(Sealed, match="PIN for token 'obp-test' is incorrect") as raised:
        await store_on(softhsm_token, prefix, pin=wrong).open(create=True)

    assert wrong not in str(raised.value)
    assert softhsm_token.pin not in str(raised.value)


async def test_a_wrong_pin_is_sealed_while_another_store_is_logged_in(
    softhsm_token: SoftHsmToken, prefix: str
) -> None:
    """PKCS#11 logs in per process: a second login fails whatever the PIN, so it is compared."""
    good = store_on(softhsm_token, prefix)
    await good.open(create=True)
    try:
        with pytest.raises(Sealed, match="incorrect"):
            await store_on(softhsm_token, prefix, pin="0000").open(create=False)
        await good.ping()
    finally:
        await good.close()


async def test_an_unknown_token_label_is_sealed(softhsm_token: SoftHsmToken) -> None:
    store = Pkcs11KeyStore(softhsm_token.library, "no-such-token", softhsm_token.pin)

    with pytest.raises(Sealed, match=r"no token labelled 'no-such-token' .*'obp-test'"):
        await store.open(create=True)


async def test_a_missing_library_is_sealed(softhsm_token: SoftHsmToken) -> None:
    store = Pkcs11KeyStore("/nonexistent/libpkcs11.so", softhsm_token.label, softhsm_token.pin)

    with pytest.raises(
        Sealed, match=r"cannot load the PKCS#11 library \(.*/nonexistent/libpkcs11.so"
    ):
        await store.open(create=True)


async def test_the_root_key_cannot_be_read_or_exported(
    softhsm_token: SoftHsmToken, prefix: str
) -> None:
    store = store_on(softhsm_token, prefix)
    await store.open(create=True)
    label = prefix + store.current_version
    await store.close()

    session = softhsm_token.session()
    try:
        key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            _ = key[Attribute.VALUE]
        assert key[Attribute.TOKEN] is True
        assert key[Attribute.PRIVATE] is True
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        assert key[Attribute.VALUE_LEN] == 32
        assert key[Attribute.WRAP] is False
    finally:
        session.close()


async def test_the_root_key_is_invisible_without_login(
    softhsm_token: SoftHsmToken, prefix: str
) -> None:
    store = store_on(softhsm_token, prefix)
    await store.open(create=True)
    await store.close()

    session = pkcs11.lib(softhsm_token.library).get_token(token_label=softhsm_token.label).open()
    try:
        labels = [obj[Attribute.LABEL] for obj in session.get_objects()]
    finally:
        session.close()
    assert not [label for label in labels if label.startswith(prefix)]


async def test_the_url_names_library_token_and_pin(
    softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBP_KEYSTORE_PIN", softhsm_token.pin)
    store = KEYSTORES.create(softhsm_token.url)
    assert isinstance(store, Pkcs11KeyStore)
    await store.open(create=True)
    try:
        version, wrapped = await store.wrap(b"k" * 32, aad=AAD)
        assert await store.unwrap(version, wrapped, aad=AAD) == b"k" * 32
        assert store.backend == "pkcs11"
        assert softhsm_token.pin not in repr(store)
    finally:
        await store.close()
        softhsm_token.purge("obp-root-")


def test_the_pin_comes_from_the_url_a_named_variable_or_obp_keystore_pin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OBP_KEYSTORE_PIN", "from-default")
    monkeypatch.setenv("MY_HSM_PIN", "from-named")
    base = "pkcs11:///usr/lib/softhsm/libsofthsm2.so?token=obp"

    assert keystore_pkcs11.create(base + "&pin=1234")._pin == "1234"
    assert keystore_pkcs11.create(base + "&pin-env=MY_HSM_PIN")._pin == "from-named"
    assert keystore_pkcs11.create(base)._pin == "from-default"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pkcs11:///lib.so", "token=LABEL"),
        ("pkcs11://lib.so?token=obp", "absolute"),
        ("pkcs11:///lib.so?token=obp&slot=1", "'slot' is not accepted"),
        ("pkcs11:///lib.so?token=obp&pin-env=UNSET_PIN_VARIABLE", "set UNSET_PIN_VARIABLE"),
    ],
)
def test_bad_urls_are_refused_without_echoing_them(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSET_PIN_VARIABLE", raising=False)
    monkeypatch.setenv("OBP_KEYSTORE_PIN", "s3cret-pin")

    with pytest.raises(ConfigurationError, match=message) as raised:
        KEYSTORES.create(url)

    assert "s3cret-pin" not in str(raised.value)


def test_a_missing_pin_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBP_KEYSTORE_PIN", raising=False)

    with pytest.raises(ConfigurationError, match="set OBP_KEYSTORE_PIN"):
        KEYSTORES.create("pkcs11:///lib.so?token=obp")
