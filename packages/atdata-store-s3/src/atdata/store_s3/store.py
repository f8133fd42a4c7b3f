"""``S3DataStore``: shards streamed into S3 multipart uploads with bounded memory.

Each shard is one object. Bytes accumulate until ``part_size``, then the part is
handed to a thread pool and uploaded while the writer keeps filling the next part;
at most ``max_concurrency`` parts are in flight per store, so memory stays near
``(max_concurrency + 1) * part_size`` however large the dataset. A shard smaller
than one part is sent with a single ``PutObject``. ``write_shards`` (in core) commits
each shard on a background thread (``atdata._shard_upload``), so the next shard fills
while the previous one completes, and removes everything it wrote if anything fails.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from atdata.errors import InvalidArgument, StoreError
from atdata.protocols import AbstractDataStore, ObjectInfo
from atdata.shard_url import StorageLocation

from . import reading
from ._bucket import check_bucket_name
from ._client import client_for, make_config, parse_s3_url
from ._credentials import S3Credentials, load_credentials
from ._errors import error_code, translate, translated
from ._resolve import resolve

__all__ = ["S3DataStore"]

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 << 20  # S3's minimum for every part but the last


class S3DataStore(AbstractDataStore):
    """Shards and metadata as objects in one S3 bucket.

    Parameters
    ----------
    credentials
        Path to a ``.env`` file, a dict (``AWS_ENDPOINT``, ``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``, optional ``AWS_REGION``, ``AWS_SESSION_TOKEN``), or
        None for the chain every reader uses (environment, AWS profile, the record of
        ``atdata local up`` for its server; see the README's "Credentials").
    bucket
        The bucket name (no prefix: pass ``prefix=`` to ``write_shards``). Checked
        against S3's naming rules (``InvalidArgument`` with the rule and a fix).
    location
        Where the bucket lives (endpoint, region), when ``credentials`` do not say:
        what a pickled store carries instead of its keys.
    create_bucket
        Create a missing bucket on first write. Turn off in production, where a
        missing bucket should be an error (``BucketNotFound``) rather than a surprise.
    config
        A ``botocore.config.Config`` merged over atdata's defaults (retries in
        ``standard`` mode with 5 retries, checksums only when required, path-style
        addressing for custom endpoints); e.g. ``Config(retries={"max_attempts": 10})``.
    part_size
        Bytes per multipart part (at least 5 MiB).
    max_concurrency
        Parts uploaded at once; with ``part_size`` it bounds memory use.
    """

    def __init__(
        self,
        credentials: str | os.PathLike[str] | Mapping[str, str] | None = None,
        bucket: str | None = None,
        *,
        location: StorageLocation | None = None,
        create_bucket: bool = True,
        config: Config | None = None,
        part_size: int = 8 << 20,
        max_concurrency: int = 4,
    ) -> None:
        bucket = check_bucket_name(bucket)
        if isinstance(part_size, bool) or not isinstance(part_size, int) or part_size < MIN_PART_SIZE:
            raise InvalidArgument(f"part_size={part_size!r} is invalid: S3 parts are at least {MIN_PART_SIZE} bytes")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise InvalidArgument(f"max_concurrency={max_concurrency!r} is invalid: pass a positive int")
        if config is not None and not isinstance(config, Config):
            raise InvalidArgument(f"config={config!r} is invalid: pass a botocore.config.Config")
        if location is not None and not isinstance(location, StorageLocation):
            raise InvalidArgument(f"location={location!r:.200} is invalid: pass an atdata.shard_url.StorageLocation")
        if isinstance(credentials, (str, os.PathLike)):
            credentials = str(Path(credentials).expanduser().resolve())  # same file in other processes
        self._credentials_arg = credentials
        explicit: S3Credentials | None
        if credentials is not None:
            explicit = load_credentials(credentials)
        else:  # as a reader would: configure(), this bucket's store here (a pickled store's source)
            explicit = reading.configured_credentials(bucket, location)
        self.credentials: S3Credentials = resolve(location, explicit)
        self.bucket = bucket
        self.create_bucket = create_bucket
        self.config = config
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self._boto_config = make_config(self.credentials.endpoint_url, max_concurrency + 4, config)
        self._init_process_state()
        # Readers of s3://{bucket}/... in this process use this store's credentials.
        reading.remember_store(bucket, self.credentials, self._boto_config)

    def _init_process_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._bucket_ready = False
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(self.max_concurrency)

    # pickling: parameters only; clients, pools and locks are rebuilt per process

    def _params(self) -> dict[str, Any]:
        """What a pickled store carries: never a secret. A credentials file travels as its
        path (re-read there); keys from a dict or the chain stay here, and the other
        process finds its own (environment, profile, `atdata local up`'s record) for the
        recorded location."""
        path = self._credentials_arg if isinstance(self._credentials_arg, str) else None
        return {
            "credentials": path,
            "location": self.location,
            "bucket": self.bucket,
            "create_bucket": self.create_bucket,
            "config": self.config,
            "part_size": self.part_size,
            "max_concurrency": self.max_concurrency,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._params(),))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, S3DataStore):
            return NotImplemented
        mine, theirs = self._params(), other._params()
        mine["config"], theirs["config"] = _options(self.config), _options(other.config)
        return mine == theirs

    def __hash__(self) -> int:
        return hash((S3DataStore, self.bucket))

    def __repr__(self) -> str:
        endpoint = self.credentials.endpoint_url or "AWS"
        return f"S3DataStore(bucket={self.bucket!r}, endpoint={endpoint!r}, credentials={self.credentials.source!r})"

    # primitives

    @property
    def client(self) -> Any:
        """The boto3 S3 client of this process (e.g. to register botocore event hooks)."""
        return client_for(self.credentials, self._boto_config)

    @property
    def location(self) -> StorageLocation:
        """Where the bucket lives: the endpoint (None for AWS S3) and the signing region.

        ``write_shards`` puts it on each URL it returns, so indexes record it and readers
        in other processes reach the bucket with nothing configured.
        """
        region = self.credentials.client_kwargs()["region_name"] or self.client.meta.region_name
        return StorageLocation(endpoint_url=self.credentials.endpoint_url, region=region)

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def open_write(self, key: str) -> _MultipartWriter:
        if not isinstance(key, str) or not key or key.startswith("/"):
            raise InvalidArgument(f"key {key!r} is invalid: pass a non-empty key without a leading '/'")
        if self._pid != os.getpid():
            # Forked: the parent's part-upload threads do not exist here, yet its pool
            # would count them as idle and never start one (every part would wait forever).
            self._init_process_state()
        self._ensure_bucket()
        return _MultipartWriter(self, key)

    def open_read(self, url: str) -> BinaryIO:
        return reading.open_object(url, self.client, self.credentials)

    def object_size(self, url: str) -> int | None:
        bucket, key = parse_s3_url(url)
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                return None  # HEAD has no body: a missing key and a missing bucket are both a bare 404
            raise translate(exc, "checking", url, credentials=self.credentials) from exc
        except BotoCoreError as exc:
            raise translate(exc, "checking", url, credentials=self.credentials) from exc
        return int(response["ContentLength"])

    def delete(self, keys: Iterable[str]) -> None:
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == 1000:  # S3's DeleteObjects limit
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: list[str]) -> None:
        url = self.url_for(keys[0])
        try:
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                return  # nothing stored, nothing to delete
            raise translate(exc, "deleting", url, credentials=self.credentials) from exc
        except BotoCoreError as exc:
            raise translate(exc, "deleting", url, credentials=self.credentials) from exc
        failed = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
        if failed:
            first = failed[0]
            raise StoreError(
                f"deleting {self.url_for(first.get('Key', '?'))} failed: {first.get('Code')}: "
                f"{first.get('Message', '')} ({len(failed)} of {len(keys)} keys not deleted)"
            )

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            # rclone may omit KeyCount on empty listings: read Contents only.
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    yield ObjectInfo(key, self.url_for(key), int(item["Size"]), item["LastModified"].timestamp())
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                return  # a bucket never written to holds nothing
            raise translate(exc, "listing", self.url_for(prefix), credentials=self.credentials) from exc
        except BotoCoreError as exc:
            raise translate(exc, "listing", self.url_for(prefix), credentials=self.credentials) from exc

    # helpers

    def _ensure_bucket(self) -> None:
        with self._lock:
            if self._bucket_ready:
                return
            url = f"s3://{self.bucket}"
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if error_code(exc) not in ("404", "NoSuchBucket", "NotFound") or not self.create_bucket:
                    raise translate(
                        exc, "checking bucket", url, missing="bucket", credentials=self.credentials
                    ) from exc
                self._create_bucket(url)
            except BotoCoreError as exc:
                raise translate(exc, "checking bucket", url, missing="bucket", credentials=self.credentials) from exc
            self._bucket_ready = True

    def _create_bucket(self, url: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = self.client.meta.region_name
        if not self.credentials.endpoint_url and region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
            log.info("created bucket %s", url)
        except ClientError as exc:
            if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise translate(exc, "creating bucket", url, missing="bucket", credentials=self.credentials) from exc
        except BotoCoreError as exc:
            raise translate(exc, "creating bucket", url, missing="bucket", credentials=self.credentials) from exc

    def _submit(self, fn: Any, *args: Any) -> Future[Any]:
        """Run ``fn`` on the part pool once one of ``max_concurrency`` slots is free."""
        self._slots.acquire()  # blocks the writer: this is what bounds memory
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="atdata-s3-part")
            pool = self._pool
        try:
            future = pool.submit(fn, *args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future


def _options(config: Config | None) -> dict[str, Any] | None:
    return None if config is None else dict(config._user_provided_options)


def _rebuild(params: dict[str, Any]) -> S3DataStore:
    credentials = params.pop("credentials")
    bucket = params.pop("bucket")
    return S3DataStore(credentials, bucket, **params)


class _MultipartWriter:
    """One object being written: ``PutObject`` if it stays under one part, else multipart."""

    def __init__(self, store: S3DataStore, key: str) -> None:
        self._store = store
        self._key = key
        self._url = store.url_for(key)
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._closed = False

    def write(self, data: bytes, /) -> int:
        if self._closed:
            raise StoreError(f"writing {self._url}: the writer is already committed or aborted")
        self._chunks.append(data if isinstance(data, bytes) else bytes(data))
        self._buffered += len(data)
        if self._buffered >= self._store.part_size:
            self._raise_failed_part()
            self._send_part()
        return len(data)

    def _send_part(self) -> None:
        body = b"".join(self._chunks)
        self._chunks, self._buffered = [], 0
        client = self._store.client
        if self._upload_id is None:
            with translated("starting upload of", self._url):
                self._upload_id = client.create_multipart_upload(Bucket=self._store.bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        self._parts.append(self._store._submit(self._upload_part, client, number, body))

    def _upload_part(self, client: Any, number: int, body: bytes) -> dict[str, Any]:
        with translated(f"uploading part {number} of", self._url):
            response = client.upload_part(
                Bucket=self._store.bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
            )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _raise_failed_part(self) -> None:
        # Stop filling as soon as a part failed rather than at commit.
        for part in self._parts:
            if part.done() and part.exception() is not None:
                raise part.exception()  # type: ignore[misc]

    def commit(self) -> None:
        if self._closed:
            raise StoreError(f"committing {self._url}: the writer is already committed or aborted")
        try:
            client = self._store.client
            if self._upload_id is None:
                body = b"".join(self._chunks)
                self._chunks = []
                with translated("uploading", self._url):
                    client.put_object(Bucket=self._store.bucket, Key=self._key, Body=body)
            else:
                if self._buffered:
                    self._send_part()
                parts = [part.result() for part in self._parts]
                with translated("completing upload of", self._url):
                    client.complete_multipart_upload(
                        Bucket=self._store.bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": parts},
                    )
                self._upload_id = None
            self._closed = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._closed and self._upload_id is None:
            return
        self._closed = True
        self._chunks = []
        for part in self._parts:
            part.cancel()
        for part in self._parts:
            try:
                part.exception()  # wait: a part finishing after the abort would be billed
            except BaseException:  # noqa: BLE001, S110 - cancelled parts
                pass
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._store.client.abort_multipart_upload(Bucket=self._store.bucket, Key=self._key, UploadId=upload_id)
        except ClientError as exc:
            if error_code(exc) != "NoSuchUpload":
                log.warning("could not abort the multipart upload of %s: %s", self._url, exc)
        except BotoCoreError as exc:
            log.warning("could not abort the multipart upload of %s: %s", self._url, exc)
