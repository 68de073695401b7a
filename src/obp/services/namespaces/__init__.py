"""Namespaces: the tenants of the platform. Other contexts import only from here."""

from obp.services.namespaces.model import Namespace
from obp.services.namespaces.service import EVENT_SERVICE, NamespaceService

__all__ = ["EVENT_SERVICE", "Namespace", "NamespaceService"]
