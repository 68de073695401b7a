"""Key-value storage: raw values under keys, per namespace. Other contexts import only here."""

from obp.services.kv.model import KvEntry, Preconditions
from obp.services.kv.service import EVENT_SERVICE, KvService

__all__ = ["EVENT_SERVICE", "KvEntry", "KvService", "Preconditions"]
