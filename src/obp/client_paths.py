"""Path building the SDK's APIs share."""

from __future__ import annotations

from urllib.parse import quote


def segment(value: str) -> str:
    """One path segment: every `/` encoded, and `.`/`..` too, since httpx would resolve them
    (a key or id `..` would then name the resource above it, such as the namespace)."""
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded
