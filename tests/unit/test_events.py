"""Events: routing keys, AMQP topic matching and the wire format."""

from __future__ import annotations

import pytest

from obp.kernel.events import Event, topic_matches


def test_routing_key_is_namespace_service_event() -> None:
    assert Event(namespace="acme", service="namespace", name="deleted").routing_key == (
        "acme.namespace.deleted"
    )


@pytest.mark.parametrize("part", ["", "a.b", "*", "#"])
def test_rejects_routing_parts_that_would_break_topics(part: str) -> None:
    with pytest.raises(ValueError, match="routing parts"):
        Event(namespace=part or "", service="namespace", name="deleted")


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("acme.namespace.deleted", "acme.namespace.deleted", True),
        ("*.namespace.deleted", "acme.namespace.deleted", True),
        ("*.namespace.deleted", "acme.kv.deleted", False),
        ("acme.*", "acme.namespace.deleted", False),
        ("acme.#", "acme.namespace.deleted", True),
        ("#", "acme.namespace.deleted", True),
        ("#.deleted", "acme.namespace.deleted", True),
        ("acme.#.deleted", "acme.deleted", True),
        ("*.*.*.*", "acme.namespace.deleted", False),
    ],
)
def test_topic_matching_follows_amqp(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_wire_format_round_trips() -> None:
    event = Event(namespace="acme", service="kv", name="set", payload={"key": "a/b", "n": 1})
    assert Event.from_json(event.to_json()) == event
