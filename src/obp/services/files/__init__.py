"""Files: a tenant's blobs with their records. Other contexts import only from here."""

from obp.services.files.model import FileRecord, Usage
from obp.services.files.service import EVENT_SERVICE, FileService

__all__ = ["EVENT_SERVICE", "FileRecord", "FileService", "Usage"]
