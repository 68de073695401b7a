"""The key-value service on every database engine: writes, conditions, reads, TTLs, listing."""

from __future__ import annotations

import asyncio

import pytest

from obp.kernel.errors import InvalidInput, NotFound, PayloadTooLarge, PreconditionFailed
from obp.services.kv import KvService, Preconditions
from obp.services.kv.model import etag_of
from tests.integration.kv_world import (
    MAX_VALUE,
    NS,
    World,
    world_fixture,  # noqa: F401  (the `world` fixture)
)
from tests.principals import OPERATOR

ABSENT = Preconditions(if_none_match=("*",))


async def _put(kv: KvService, key: str, value: bytes, **options: object) -> tuple[int, bool]:
    entry, created = await kv.put(
        principal=OPERATOR,
        namespace=NS,
        key=key,
        value=value,
        **options,  # type: ignore[arg-type]
    )
    return entry.version, created


async def _value(kv: KvService, key: str) -> bytes | None:
    try:
        entry, _ = await kv.get(principal=OPERATOR, namespace=NS, key=key)
    except NotFound:
        return None
    return entry.value


async def _keys(kv: KvService, prefix: str | None = None, limit: int | None = None) -> list[str]:
    keys: list[str] = []
    cursor = None
    while True:
        page = await kv.list(
            principal=OPERATOR, namespace=NS, prefix=prefix, cursor=cursor, limit=limit
        )
        keys += [item.key for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return keys


async def test_a_stored_value_reads_back_with_its_content_type_and_etag(world: World) -> None:
    entry, created = await world.kv.put(
        principal=OPERATOR,
        namespace=NS,
        key="orders/42",
        value=b"\x00\xffraw",
        content_type="application/x-thing; v=1",
    )
    assert created
    assert (entry.version, entry.size, entry.expires_at) == (1, 5, None)
    assert entry.etag == etag_of("application/x-thing; v=1", b"\x00\xffraw")
    for _ in range(2):  # from the database, then from the cache
        found, modified = await world.kv.get(principal=OPERATOR, namespace=NS, key="orders/42")
        assert modified
        assert (found.value, found.content_type, found.etag) == (
            b"\x00\xffraw",
            "application/x-thing; v=1",
            entry.etag,
        )
    head, _ = await world.kv.get(
        principal=OPERATOR, namespace=NS, key="orders/42", with_value=False
    )
    assert (head.value, head.size, head.etag) == (None, 5, entry.etag)


async def test_put_says_created_then_replaced_and_the_version_counts_every_write(
    world: World,
) -> None:
    assert await _put(world.kv, "k", b"one") == (1, True)
    assert await _put(world.kv, "k", b"two") == (2, False)
    assert await _put(world.kv, "k", b"") == (3, False)
    assert await _value(world.kv, "k") == b""


async def test_a_deleted_key_keeps_a_tombstone_so_its_next_value_continues_the_count(
    world: World,
) -> None:
    await _put(world.kv, "k", b"one")
    await _put(world.kv, "k", b"two")
    assert await world.kv.delete(principal=OPERATOR, namespace=NS, key="k") is True
    assert await _value(world.kv, "k") is None
    assert await world.kv.delete(principal=OPERATOR, namespace=NS, key="k") is False
    assert await _put(world.kv, "k", b"three") == (4, True)
    assert await _value(world.kv, "k") == b"three"


async def test_unknown_keys_and_namespaces_are_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="never-written"):
        await world.kv.get(principal=OPERATOR, namespace=NS, key="never-written")
    with pytest.raises(NotFound, match="namespace"):
        await world.kv.put(principal=OPERATOR, namespace="nowhere", key="k", value=b"v")


async def test_if_match_replaces_only_the_value_with_that_etag(world: World) -> None:
    await _put(world.kv, "cas", b"first")
    first = etag_of("application/octet-stream", b"first")
    with pytest.raises(PreconditionFailed):
        await _put(world.kv, "cas", b"x", conditions=Preconditions(if_match=('"stale"',)))
    assert await _put(world.kv, "cas", b"second", conditions=Preconditions(if_match=(first,)))
    with pytest.raises(PreconditionFailed):
        await _put(world.kv, "cas", b"third", conditions=Preconditions(if_match=(first,)))
    with pytest.raises(PreconditionFailed):
        await _put(world.kv, "absent", b"x", conditions=Preconditions(if_match=("*",)))
    assert await _value(world.kv, "cas") == b"second"
    assert await _value(world.kv, "absent") is None


async def test_if_none_match_star_creates_only_what_is_absent_deleted_or_expired(
    world: World,
) -> None:
    assert await _put(world.kv, "once", b"a", conditions=ABSENT) == (1, True)
    with pytest.raises(PreconditionFailed, match="exists"):
        await _put(world.kv, "once", b"b", conditions=ABSENT)
    await world.kv.delete(principal=OPERATOR, namespace=NS, key="once")
    assert await _put(world.kv, "once", b"c", conditions=ABSENT) == (3, True)
    await _put(world.kv, "brief", b"x", ttl=5)
    world.clock.advance(6)
    assert await _put(world.kv, "brief", b"y", conditions=ABSENT) == (2, True)
    assert await _value(world.kv, "once") == b"c"


async def test_delete_honours_if_match(world: World) -> None:
    await _put(world.kv, "k", b"v")
    with pytest.raises(PreconditionFailed):
        await world.kv.delete(
            principal=OPERATOR, namespace=NS, key="k", conditions=Preconditions(if_match=('"x"',))
        )
    assert await _value(world.kv, "k") == b"v"
    current = Preconditions(if_match=(etag_of("application/octet-stream", b"v"),))
    assert await world.kv.delete(principal=OPERATOR, namespace=NS, key="k", conditions=current)
    with pytest.raises(PreconditionFailed):
        await world.kv.delete(principal=OPERATOR, namespace=NS, key="k", conditions=current)


async def test_of_concurrent_create_only_writes_exactly_one_succeeds(world: World) -> None:
    for round_ in range(5):
        key = f"race-{round_}"
        outcomes = await asyncio.gather(
            *(_put(world.kv, key, f"writer {i}".encode(), conditions=ABSENT) for i in range(8)),
            return_exceptions=True,
        )
        created = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, PreconditionFailed)]
        assert created == [(1, True)], outcomes
        assert len(refused) == 7, outcomes


async def test_of_concurrent_compare_and_set_writes_exactly_one_succeeds(world: World) -> None:
    await _put(world.kv, "counter", b"0")
    for round_ in range(5):
        current, _ = await world.kv.get(principal=OPERATOR, namespace=NS, key="counter")
        condition = Preconditions(if_match=(current.etag,))
        outcomes = await asyncio.gather(
            *(
                _put(world.kv, "counter", f"{round_}-{i}".encode(), conditions=condition)
                for i in range(6)
            ),
            return_exceptions=True,
        )
        wins = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(wins) == 1, outcomes
        assert all(isinstance(o, PreconditionFailed) for o in outcomes if o not in wins)
        assert wins[0] == (current.version + 1, False)


async def test_an_expired_value_is_absent_for_reads_lists_and_conditions(world: World) -> None:
    entry, _ = await world.kv.put(principal=OPERATOR, namespace=NS, key="k", value=b"v", ttl=60)
    assert entry.expires_at is not None
    await _put(world.kv, "stays", b"v")
    assert await _value(world.kv, "k") == b"v"  # cached now, until it expires
    world.clock.advance(59)
    assert await _value(world.kv, "k") == b"v"
    world.clock.advance(2)
    assert await _value(world.kv, "k") is None
    assert await _keys(world.kv) == ["stays"]
    with pytest.raises(PreconditionFailed):
        await _put(world.kv, "k", b"x", conditions=Preconditions(if_match=("*",)))
    assert await world.kv.delete(principal=OPERATOR, namespace=NS, key="k") is False
    assert await _put(world.kv, "k", b"again") == (2, True)
    assert (await world.kv.get(principal=OPERATOR, namespace=NS, key="k"))[0].expires_at is None


async def test_a_read_whose_etag_the_caller_has_is_not_modified_and_carries_no_bytes(
    world: World,
) -> None:
    await _put(world.kv, "k", b"v")
    etag = etag_of("application/octet-stream", b"v")
    for _ in range(2):
        entry, modified = await world.kv.get(
            principal=OPERATOR,
            namespace=NS,
            key="k",
            conditions=Preconditions(if_none_match=(etag,)),
        )
        assert (modified, entry.value, entry.etag) == (False, None, etag)
    _, modified = await world.kv.get(
        principal=OPERATOR, namespace=NS, key="k", conditions=Preconditions(if_none_match=('"x"',))
    )
    assert modified


async def test_a_value_over_the_limit_is_refused_and_changes_nothing(world: World) -> None:
    assert await _put(world.kv, "big", b"x" * MAX_VALUE) == (1, True)
    with pytest.raises(PayloadTooLarge, match=str(MAX_VALUE)):
        await _put(world.kv, "big", b"x" * (MAX_VALUE + 1))
    assert await _value(world.kv, "big") == b"x" * MAX_VALUE


async def test_invalid_keys_ttls_and_content_types_are_refused_before_anything_changes(
    world: World,
) -> None:
    for key in ["", "a\x00b", "k" * 1025]:
        with pytest.raises(InvalidInput):
            await _put(world.kv, key, b"v")
    with pytest.raises(InvalidInput):
        await _put(world.kv, "k", b"v", ttl=0)
    with pytest.raises(InvalidInput):
        await _put(world.kv, "k", b"v", content_type="not a type")
    assert await _keys(world.kv) == []
    assert await world.events() == []


UNICODE_KEYS = [
    "a",
    "a/b",
    "a/ü",
    "a/\uffff",
    "a/😀",
    "a/\U0010ffff",
    "a0",
    "ab",
    "b",
    "é",
    "é/x",
    "中文",
    "😀",
    "😀/a",
    "\U0010ffff",
]


async def test_listing_is_in_code_point_order_with_unicode_prefixes_and_pages(
    world: World,
) -> None:
    for key in reversed(UNICODE_KEYS):
        await _put(world.kv, key, key.encode())
    assert await _keys(world.kv) == sorted(UNICODE_KEYS)
    assert await _keys(world.kv, limit=2) == sorted(UNICODE_KEYS)
    for prefix in ["a/", "a", "é", "😀", "\U0010ffff", "a/\U0010ffff", "中", "z", "a/ü"]:
        expected = sorted(k for k in UNICODE_KEYS if k.startswith(prefix))
        assert await _keys(world.kv, prefix=prefix, limit=1) == expected, prefix


async def test_listing_leaves_out_deleted_and_expired_keys_and_shows_metadata(
    world: World,
) -> None:
    await _put(world.kv, "deleted", b"v")
    await world.kv.delete(principal=OPERATOR, namespace=NS, key="deleted")
    await _put(world.kv, "expiring", b"v", ttl=10)
    await _put(world.kv, "kept", b"value", content_type="text/plain")
    page = await world.kv.list(principal=OPERATOR, namespace=NS)
    assert [item.key for item in page.items] == ["expiring", "kept"]
    kept = page.items[1]
    assert (kept.size, kept.content_type, kept.version, kept.value) == (5, "text/plain", 1, None)
    assert kept.updated_at is not None
    assert page.items[0].expires_at is not None
    world.clock.advance(11)
    assert await _keys(world.kv) == ["kept"]


async def test_every_call_is_authorized_for_its_action_on_the_key(world: World) -> None:
    await _put(world.kv, "orders/42", b"v")
    await world.kv.get(principal=OPERATOR, namespace=NS, key="orders/42")
    await world.kv.list(principal=OPERATOR, namespace=NS, prefix="orders/")
    await world.kv.list(principal=OPERATOR, namespace=NS)
    await world.kv.delete(principal=OPERATOR, namespace=NS, key="orders/42")
    asked = [(action, resource) for _, ns, action, resource in world.access.checked if ns == NS]
    assert asked == [
        ("kv.set", "kv:orders/42"),
        ("kv.get", "kv:orders/42"),
        ("kv.list", "kv:orders/*"),
        ("kv.list", "kv:*"),
        ("kv.delete", "kv:orders/42"),
    ]


async def test_every_change_is_recorded_as_an_event_naming_who_and_never_the_value(
    world: World,
) -> None:
    await _put(world.kv, "k", b"secret-bytes-1")
    await world.kv.delete(principal=OPERATOR, namespace=NS, key="k")
    await world.kv.delete(principal=OPERATOR, namespace=NS, key="k")  # nothing to delete
    events = await world.events()
    assert [e.routing_key for e in events] == ["acme.kv.changed", "acme.kv.changed"]
    assert [(e.payload["op"], e.payload["version"]) for e in events] == [("set", 1), ("deleted", 2)]
    assert all(e.payload["by"] == OPERATOR.identity for e in events)
    assert all(e.payload["key"] == "k" for e in events)
    assert all(b"secret-bytes" not in e.to_json() for e in events)
