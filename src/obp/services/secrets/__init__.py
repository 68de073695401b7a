"""Secrets: a tenant's sealed, versioned values. Other contexts import only from here."""

from obp.services.secrets.model import Secret
from obp.services.secrets.service import EVENT_SERVICE, SecretService

__all__ = ["EVENT_SERVICE", "Secret", "SecretService"]
