"""Where `obp login` keeps tokens: one file in the user's config dir, readable by the user only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import platformdirs

from obp.client import Tokens


def credentials_path() -> Path:
    """`<user config dir>/obp/credentials.json` (OBP_CONFIG_DIR overrides the directory)."""
    base = os.environ.get("OBP_CONFIG_DIR") or platformdirs.user_config_dir("obp")
    return Path(base) / "credentials.json"


def load(url: str) -> Tokens | None:
    """The stored login for the server at `url`, if any."""
    entry = _read().get(url.rstrip("/"))
    if not isinstance(entry, dict):
        return None
    try:
        return Tokens(
            namespace=str(entry["namespace"]),
            access_token=str(entry["access_token"]),
            refresh_token=entry.get("refresh_token"),
            expires_at=float(entry["expires_at"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def save(url: str, tokens: Tokens | None) -> None:
    """Store (or, with None, forget) the login for `url`; the file is created 0600."""
    data = _read()
    if tokens is None:
        data.pop(url.rstrip("/"), None)
    else:
        data[url.rstrip("/")] = {
            "namespace": tokens.namespace,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at,
        }
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(temporary, path)


def _read() -> dict[str, object]:
    try:
        data = json.loads(credentials_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
