"""Audit: the trail of refusals and failures per namespace. Other contexts import from here."""

from obp.services.audit.service import AuditService

__all__ = ["AuditService"]
