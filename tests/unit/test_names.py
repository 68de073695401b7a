"""Namespace names are DNS labels; global and system are reserved."""

from __future__ import annotations

import pytest

from obp.kernel.errors import InvalidInput
from obp.kernel.names import NAMESPACE_PATTERN, validate_new_namespace_name


@pytest.mark.parametrize("name", ["a", "acme", "acme-corp", "0", "a1-b2", "x" * 63])
def test_accepts_dns_labels(name: str) -> None:
    assert validate_new_namespace_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "A", "acme_", "-a", "a-", "a.b", "x" * 64, "ä", "a b", "acme\n"]
)
def test_rejects_anything_else_naming_the_pattern(name: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_new_namespace_name(name)
    assert error.value.errors[0].loc == ("name",)
    assert NAMESPACE_PATTERN in error.value.errors[0].msg


@pytest.mark.parametrize("name", ["global", "system"])
def test_rejects_reserved_names(name: str) -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        validate_new_namespace_name(name)
