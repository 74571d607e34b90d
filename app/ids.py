"""Time-ordered UUIDv7 ids (RFC 9562): index-friendly and sortable by creation."""

from uuid import UUID

from uuid_utils.compat import uuid7 as _uuid7


def new_id() -> UUID:
    return _uuid7()
