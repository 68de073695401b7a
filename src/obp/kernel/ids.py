"""Identifiers: UUIDv7, so ids sort by creation time and index well."""

from __future__ import annotations

import uuid_utils


def new_id() -> str:
    """A new UUIDv7 in canonical text form."""
    return str(uuid_utils.uuid7())
