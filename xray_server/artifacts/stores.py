"""The cold tier: where artifact payloads live. One interface, two stores.

Nothing else in the server knows which store is in use. Every store answers within its
timeout or raises `StoreUnavailable`; a key that could escape the store raises `BadKey`.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from xray_server.runtime.config import Settings

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)*")


class StoreUnavailable(Exception):
    """The store did not answer in time, refused, or failed."""


class BadKey(ValueError):
    """A key that is not a plain relative path of safe characters."""


class ObjectMissing(Exception):
    """No object under that key."""


def check_key(key: str) -> str:
    """`key` if it is safe in any store: relative, no `..`, letters, digits, `_.-/` only."""
    if not isinstance(key, str) or len(key) > 1024 or not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise BadKey(f"artifact keys are relative paths of letters, digits and _.-/ (got {str(key)[:80]!r})")
    return key


class ArtifactStore(Protocol):
    """What the server needs from an object store."""

    name: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


class LocalDirStore:
    """Objects as files under one folder (the default: `artifacts/` or XRAY_ARTIFACTS_DIR)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise BadKey(f"key {key!r} leaves the artifact folder")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half an object, a crash leaves none.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {key}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {key}: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete {key}: {exc.strerror}") from exc


class S3Store:
    """Objects in a bucket of MinIO or any S3-compatible store, with short timeouts and no
    retries of its own (the caller's budget and circuit breaker decide)."""

    name = "s3"

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *, secure: bool = False,
                 timeout: float = 1.0) -> None:
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                   retries=urllib3.Retry(total=0), maxsize=8)
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                            http_client=http)
        self.bucket = bucket
        self._bucket_ready = False

    def _call(self, fn, *args, **kwargs):
        from minio.error import S3Error

        try:
            if not self._bucket_ready:
                if not self.client.bucket_exists(self.bucket):
                    self.client.make_bucket(self.bucket)
                self._bucket_ready = True
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectMissing(str(exc.object_name)) from None
            raise StoreUnavailable(f"S3 answered {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"S3 unreachable: {type(exc).__name__}") from exc
        except Exception as exc:  # urllib3 errors that are not OSError
            raise StoreUnavailable(f"S3 failed: {type(exc).__name__}") from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._call(self.client.put_object, self.bucket, check_key(key), io.BytesIO(data), len(data),
                   content_type=content_type)

    def get(self, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket, check_key(key))
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()
        return self._call(read)

    def exists(self, key: str) -> bool:
        try:
            self._call(self.client.stat_object, self.bucket, check_key(key))
            return True
        except ObjectMissing:
            return False

    def delete(self, key: str) -> None:
        self._call(self.client.remove_object, self.bucket, check_key(key))


def open_store(settings: "Settings") -> ArtifactStore:
    """The S3 store when XRAY_S3_ENDPOINT is set, else the local folder."""
    if settings.s3_endpoint:
        return S3Store(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket,
                       secure=settings.s3_secure, timeout=settings.artifact_timeout)
    return LocalDirStore(settings.artifacts_dir)
