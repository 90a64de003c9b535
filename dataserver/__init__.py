"""Generic file storage by global filename: storage on disk, the HTTP server, the client
with its local cache. Knows nothing of the database.

`dataserver` never imports `persistence`, `targets` or `awe`. Nothing is here yet.
"""

__all__ = []
