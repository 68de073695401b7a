"""Domain events: what happened in a namespace, routed as `<namespace>.<service>.<event>`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from obp.kernel.clock import utcnow
from obp.kernel.ids import new_id


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened; consumers must be idempotent (delivery is at-least-once)."""

    namespace: str
    service: str
    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    occurred_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        for part in (self.namespace, self.service, self.name):
            if not part or "." in part or "*" in part or "#" in part:
                raise ValueError(f"event routing parts must be non-empty words, got {part!r}")

    @property
    def routing_key(self) -> str:
        """The topic this event is published under."""
        return f"{self.namespace}.{self.service}.{self.name}"

    def to_json(self) -> bytes:
        """The wire form used by the outbox and every bus."""
        return json.dumps(
            {
                "id": self.id,
                "namespace": self.namespace,
                "service": self.service,
                "name": self.name,
                "occurred_at": self.occurred_at.isoformat(),
                "payload": dict(self.payload),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        """Parse the wire form written by `to_json`."""
        raw = json.loads(data)
        return cls(
            namespace=raw["namespace"],
            service=raw["service"],
            name=raw["name"],
            payload=raw["payload"],
            id=raw["id"],
            occurred_at=datetime.fromisoformat(raw["occurred_at"]),
        )


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` is zero or more words."""
    return _match(pattern.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])
