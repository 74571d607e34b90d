"""Optimistic concurrency: `If-Match` carries the version a client last saw."""

from __future__ import annotations

from app.domain.errors import PreconditionFailed

ANY_VERSION = -1  # If-Match: *


def check_version(current: int, expected: int | None) -> None:
    if expected is None or expected == ANY_VERSION:
        return
    if current != expected:
        raise PreconditionFailed(
            f"The record is at version {current}, not {expected}; fetch it again and reapply your change",
            current_version=current,
        )
