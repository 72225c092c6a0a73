"""``Objects`` in an S3-compatible bucket, under a key prefix: qthumb's own store on several
machines (``QTHUMB_STORAGE_URL=s3://…``) and every S3 destination a query names.

Uploads go through boto3's transfer manager (multipart above ``s3_multipart_threshold``; one PUT
or one completed multipart creates the object whole). A store's refusal is a ``FileError`` with
the store's own error code (a wrong secret, an unknown key, a missing bucket, a refused ACL).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qthumb.app.egress import EgressPolicy
from qthumb.app.settings import Settings
from qthumb.app.storage.objects import CHUNK, FileError, Location, ObjectStat, StoreUnavailable
from qthumb.app.storage.s3 import (
    S3Credentials,
    S3Location,
    error_code,
    is_missing,
    is_transient,
    s3_client,
    s3_errors,
)


class _Late(Exception):
    """A download past its deadline (raised in boto3's progress callback)."""


class LateDownload(FileError):
    """The object did not arrive within the time allowed."""


class S3Objects:
    """``extra``: what every object put here is stored with (``ACL``, ``StorageClass``,
    ``CacheControl``: a destination's ``permissions``, ``storage_class``, ``cache_control``).
    ``egress``: the policy a query's endpoint is checked against on every connection (``None``
    for qthumb's own store). A store's answer is told as what it was: "no such key" alone is
    "not there"; a 5xx, throttling or a broken connection is ``StoreUnavailable``; any other
    refusal, a ``FileError`` with the store's code."""

    def __init__(
        self,
        location: S3Location,
        creds: S3Credentials,
        settings: Settings,
        egress: EgressPolicy | None,
        prefix: str = "",
        extra: dict[str, str] | None = None,
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        self.bucket_location = location
        self.prefix = prefix.strip("/")
        self.extra = extra or {}
        self.client = s3_client(location, creds, settings, egress)
        self.transfer = TransferConfig(
            multipart_threshold=settings.s3_multipart_threshold,
            multipart_chunksize=settings.s3_multipart_threshold,
            use_threads=True,
            max_concurrency=4,
        )

    @property
    def bucket(self) -> str:
        return self.bucket_location.bucket

    def full_key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key.strip("/")) if p)

    def _failed(self, key: str, exc: Exception) -> FileError:
        # boto3 wraps the store's ClientError while transferring: report the store's own code
        inner = exc.__cause__ or exc.__context__
        cause = inner if isinstance(inner, s3_errors()[0]) else exc
        kind = StoreUnavailable if is_transient(cause) else FileError
        return kind(f"{self.bucket_location.describe(key)}: {error_code(cause)}")

    def put(self, key: str, local: Path, content_type: str) -> None:
        full = self.full_key(key)
        try:
            self.client.upload_file(
                str(local),
                self.bucket,
                full,
                ExtraArgs={"ContentType": content_type, **self.extra},
                Config=self.transfer,
            )
        except s3_errors() as exc:
            raise self._failed(full, exc) from None

    def get(self, key: str, target: Path, within: float | None = None) -> Path:
        """``within``: seconds the whole download may take (each read has its own timeout;
        this bounds a store that trickles). Past it: ``FileError`` saying so."""
        full = self.full_key(key)
        deadline = None if within is None else time.monotonic() + within

        def on_time(_: int) -> None:  # boto3 calls it as each piece arrives
            if deadline is not None and time.monotonic() > deadline:
                raise _Late()

        try:
            self.client.download_file(
                self.bucket, full, str(target), Config=self.transfer, Callback=on_time
            )
        except _Late:
            where = self.bucket_location.describe(full)
            raise LateDownload(f"{where}: not downloaded within {within:g} s") from None
        except s3_errors() as exc:
            raise self._failed(full, exc) from None
        return target

    def open(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            reply = self.client.get_object(
                Bucket=self.bucket, Key=self.full_key(key), Range=f"bytes={start}-{end}"
            )
        except s3_errors() as exc:
            raise self._failed(self.full_key(key), exc) from None
        body = reply["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def stat(self, key: str) -> ObjectStat | None:
        full = self.full_key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full)
        except s3_errors() as exc:
            if is_missing(exc):
                return None
            raise self._failed(full, exc) from None
        return ObjectStat(size=int(head["ContentLength"]))

    def delete(self, prefix: str) -> None:
        full = self.full_key(prefix) + "/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                    )
        except s3_errors() as exc:
            raise self._failed(full, exc) from None

    def remove(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))
        except s3_errors() as exc:
            raise self._failed(self.full_key(key), exc) from None

    def location(self, key: str) -> Location:
        return Location(url=self.bucket_location.url(self.full_key(key)))

    def storage_info(self, key: str) -> dict[str, Any] | None:
        where, full = self.bucket_location, self.full_key(key)
        return {
            "type": "amazon_s3" if where.is_aws else "custom_s3",
            "host": where.host,
            "bucket": where.bucket,
            "key": full,
            # the key's folder, which the Java and .NET SDKs' models read ("" at the root)
            "path": full.rsplit("/", 1)[0] if "/" in full else "",
            # the endpoint's own scheme and port (defaults spelled out), the file's format
            "scheme": "https" if where.secure else "http",
            "port": where.port or (443 if where.secure else 80),
            "format": full.rsplit(".", 1)[-1].lower() if "." in full.rsplit("/", 1)[-1] else None,
        }

    def describe(self) -> str:
        return f"bucket {self.bucket_location.describe(self.prefix)}"

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except s3_errors() as exc:
            raise self._failed("", exc) from None
