"""Where the bytes of files live: one small interface (put a stream, open a stream, delete), kept on disk under
the data dir by default or in an S3-compatible bucket when `CRM_FILES_URL` is `s3://...`.

Both stream: an upload is written as it arrives (on disk through a temporary name renamed when complete; to S3
as a multipart upload of PART_SIZE parts, aborted on failure), so a file never sits whole in memory and a
failed upload leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from app.settings import Settings

CHUNK = 64 * 1024  # read size when streaming a file out
PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (but the last): memory per upload stays about this
WRITE_BUFFER = 1024 * 1024  # disk writes gathered to this size, each in a thread


class Missing(Exception):  # noqa: N818 - a plain outcome: the storage holds nothing under that key
    pass


class Storage(Protocol):
    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        """Store everything `chunks` yields under `key`; if it (or the storage) raises, nothing is kept."""

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The content under `key` as a stream of chunks; Missing when there is none (raised here, before any
        chunk, so that a response can still say 404)."""

    async def delete(self, key: str) -> None:
        """Remove `key` (nothing if it is not there)."""


# --- on disk --------------------------------------------------------------------------------------------


class DiskStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        org, _, name = key.partition("/")
        if not org or not name or "/" in name or name.startswith(".") or org.startswith("."):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / org / name

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        path = self.path(key)
        part = path.with_name(path.name + ".part")
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        handle = await asyncio.to_thread(open, part, "wb")
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= WRITE_BUFFER:
                    await asyncio.to_thread(handle.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(handle.write, bytes(buffer))
            await asyncio.to_thread(_sync_close, handle)
            await asyncio.to_thread(os.replace, part, path)
        except BaseException:
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(part.unlink, True)
            raise

    async def open(self, key: str) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(open, self.path(key), "rb")
        except FileNotFoundError:
            raise Missing(key) from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    yield chunk
            finally:
                handle.close()

        return chunks()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)


def _sync_close(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


# --- S3-compatible bucket -------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint: str | None
    region: str
    access_key: str | None
    secret_key: str | None

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """`s3://[KEY:SECRET@]bucket[/prefix][?endpoint=http://host:port&region=eu-central-1]`."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError("CRM_FILES_URL must look like s3://bucket/prefix?endpoint=...&region=...")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"CRM_FILES_URL: unknown parameters {sorted(unknown)} (endpoint, region)")
        bucket = parts.netloc.rpartition("@")[2]  # as written: hostname would lower-case it
        return cls(bucket=bucket, prefix=parts.path.strip("/"), endpoint=query.get("endpoint") or None,
                   region=query.get("region") or "us-east-1",
                   access_key=unquote(parts.username) if parts.username else None,
                   secret_key=unquote(parts.password) if parts.password else None)

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key


_session: Any = None


def _aio_session() -> Any:
    """One botocore session per process: building one reads the service descriptions from disk."""
    global _session
    if _session is None:
        from aiobotocore.session import get_session

        _session = get_session()
    return _session


class S3Storage:
    def __init__(self, location: S3Location) -> None:
        self.location = location

    def _client(self) -> Any:
        from aiobotocore.config import AioConfig

        where = self.location
        config = AioConfig(
            s3={"addressing_style": "path"} if where.endpoint else {},
            # plain MD5-free uploads every S3-compatible server understands; TLS and SHA-256 guard the bytes
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"})
        credentials = ({"aws_access_key_id": where.access_key, "aws_secret_access_key": where.secret_key}
                       if where.access_key else {})
        return _aio_session().create_client("s3", region_name=where.region, endpoint_url=where.endpoint,
                                            config=config, **credentials)

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        bucket, name = self.location.bucket, self.location.key(key)
        async with self._client() as client:
            upload_id: str | None = None
            parts: list[dict[str, Any]] = []
            buffer = bytearray()
            try:
                async for chunk in chunks:
                    buffer += chunk
                    while len(buffer) >= PART_SIZE:
                        if upload_id is None:
                            upload_id = (await client.create_multipart_upload(Bucket=bucket, Key=name))["UploadId"]
                        body = bytes(buffer[:PART_SIZE])
                        del buffer[:PART_SIZE]
                        answer = await client.upload_part(Bucket=bucket, Key=name, UploadId=upload_id,
                                                          PartNumber=len(parts) + 1, Body=body)
                        parts.append({"ETag": answer["ETag"], "PartNumber": len(parts) + 1})
                if upload_id is None:  # small: one request
                    await client.put_object(Bucket=bucket, Key=name, Body=bytes(buffer))
                    return
                if buffer or not parts:
                    answer = await client.upload_part(Bucket=bucket, Key=name, UploadId=upload_id,
                                                      PartNumber=len(parts) + 1, Body=bytes(buffer))
                    parts.append({"ETag": answer["ETag"], "PartNumber": len(parts) + 1})
                await client.complete_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id,
                                                       MultipartUpload={"Parts": parts})
            except BaseException:
                if upload_id is not None:
                    await asyncio.shield(_abort(client, bucket, name, upload_id))
                raise

    async def open(self, key: str) -> AsyncIterator[bytes]:
        from botocore.exceptions import ClientError

        stack = AsyncExitStack()
        client = await stack.enter_async_context(self._client())
        try:
            answer = await client.get_object(Bucket=self.location.bucket, Key=self.location.key(key))
        except ClientError as exc:
            await stack.aclose()
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise Missing(key) from None
            raise
        except BaseException:
            await stack.aclose()
            raise
        body = answer["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await body.read(CHUNK):
                    yield chunk
            finally:
                body.close()
                await stack.aclose()

        return chunks()

    async def delete(self, key: str) -> None:
        async with self._client() as client:
            await client.delete_object(Bucket=self.location.bucket, Key=self.location.key(key))


async def _abort(client: Any, bucket: str, name: str, upload_id: str) -> None:
    try:
        await client.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id)
    except Exception:  # noqa: BLE001 - a bucket lifecycle rule for incomplete uploads is the safety net
        from app.logging import log

        log.warning("s3_abort_failed", key=name)


def storage_for(settings: Settings) -> Storage:
    if settings.files_url:
        return S3Storage(S3Location.parse(settings.files_url))
    return DiskStorage(settings.data_dir / "files")
