"""Where rendered PDFs live: files under the data dir (`documents/<org>/<document id>.pdf`), written whole or
not at all. Callers keep only the key `save` returns, so another store (the files area's) can take over by
replacing these three functions."""

from __future__ import annotations

import os
from pathlib import Path
from uuid import UUID

from app.settings import Settings


def _path(settings: Settings, key: str) -> Path:
    return settings.data_dir.resolve() / key


def save(settings: Settings, org_id: UUID, document_id: UUID, data: bytes) -> str:
    """Store a document's PDF; -> its key. Written to a temporary name then renamed: a reader never sees half
    a file, and a second render of the same document replaces the first whole."""
    key = f"documents/{org_id}/{document_id}.pdf"
    path = _path(settings, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(path)
    return key


def path_of(settings: Settings, key: str) -> Path | None:
    """The stored file for `key` (served as it is), or None when it is gone."""
    path = _path(settings, key)
    return path if path.is_file() else None


def delete(settings: Settings, key: str) -> None:
    _path(settings, key).unlink(missing_ok=True)
